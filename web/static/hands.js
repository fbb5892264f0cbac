// Hands (docs/protocol.md, "Hands and reactions"): the "Raise hand"
// toggle in the call controls, a ✋ on the tile of everyone whose hand is
// up, and the queue of raised hands in the order they went up, where a
// moderator lowers any of them. The server holds the state; this shows
// the participant views' handRaised/handRaisedAt and sends "hand".

import { $, el } from './dom.js';
import { addControl } from './controls.js';

// handQueue lists the participants (self included) whose hand is up,
// the longest waiting first.
export function handQueue(self, participants) {
  const all = [self, ...participants].filter((p) => p && p.handRaised);
  return all.sort((a, b) => (a.handRaisedAt || 0) - (b.handRaisedAt || 0) || String(a.sid).localeCompare(String(b.sid)));
}

export class Hands {
  constructor(call) {
    this.call = call;
    this.btn = null;
    this.queue = null;
    this.observer = null;
    this.onChange = () => this.render();
  }

  mount() {
    const c = this.call;
    this.btn = addControl({ id: 'hand-btn', testid: 'hand-toggle', glyph: '✋', text: 'Raise hand', before: 'chat-btn' });
    this.btn.setAttribute('aria-pressed', 'false');
    this.btn.addEventListener('click', () => this.toggle());
    this.queue = el('section', 'hand-queue', { testid: 'hand-queue', 'aria-label': 'Raised hands' });
    this.queue.hidden = true;
    // Beside the knocks, which take its place on a phone (style.css).
    $('knocks').after(this.queue);
    for (const ev of ['roster', 'local', 'moderation']) c.addEventListener(ev, this.onChange);
    // The grid makes tiles as people come; mark new ones at once.
    this.observer = new MutationObserver(() => this.markTiles());
    this.observer.observe($('grid'), { childList: true });
    this.render();
  }

  unmount() {
    for (const ev of ['roster', 'local', 'moderation']) this.call.removeEventListener(ev, this.onChange);
    if (this.observer) this.observer.disconnect();
    this.btn.remove();
    this.queue.remove();
  }

  raised() {
    return !!(this.call.self && this.call.self.handRaised);
  }

  toggle() {
    this.call.moderate('hand', { raised: !this.raised() });
  }

  render() {
    const c = this.call;
    const up = this.raised();
    this.btn.disabled = !c.self;
    this.btn.setAttribute('aria-pressed', String(up));
    this.btn.title = up ? 'Lower your hand' : 'Raise your hand';
    this.btn.querySelector('.txt').textContent = up ? 'Lower hand' : 'Raise hand';
    const hands = handQueue(c.self, [...c.participants.values()]);
    this.queue.hidden = hands.length === 0;
    const rows = hands.map((p, i) => {
      const me = c.self && p.sid === c.self.sid;
      const row = el('div', 'hand-row', { testid: 'hand-row' });
      row.dataset.identity = p.identity;
      row.append(el('span', 'hand-text', { text: `✋ ${i + 1}. ${p.name || p.identity || 'Guest'}${me ? ' (you)' : ''}` }));
      if (c.isModerator && !me) {
        const lower = el('button', 'small', { testid: 'hand-lower', type: 'button', text: 'Lower hand' });
        lower.setAttribute('aria-label', `Lower ${p.name || p.identity}'s hand`);
        lower.addEventListener('click', () => c.moderate('mod_lower_hand', { identity: p.identity }));
        row.append(lower);
      }
      return row;
    });
    this.queue.replaceChildren(el('h3', 'hand-head', { text: 'Raised hands' }), ...rows);
    this.markTiles();
  }

  // markTiles puts ✋ on the camera tile of everyone whose hand is up.
  markTiles() {
    const c = this.call;
    const up = new Set(handQueue(c.self, [...c.participants.values()]).map((p) => p.sid));
    for (const tile of $('grid').querySelectorAll('[data-testid="tile"]')) {
      const on = tile.dataset.source === 'camera' && up.has(tile.dataset.participant);
      let badge = tile.querySelector('.tile-hand');
      if (on && !badge) {
        badge = el('span', 'tile-hand', { testid: 'tile-hand', role: 'img', 'aria-label': 'Hand raised', title: 'Hand raised', text: '✋' });
        tile.append(badge);
      } else if (!on && badge) {
        badge.remove();
      }
    }
  }
}
