// RoomPeople is what the call page says about who is here: "Ann joined" /
// "Ann left" notices, the "You're the only one here" card with a Copy link
// button, and in the people list (chat-ui.js) each person's raised hand
// and connection quality when the server's participant view carries them
// (handRaised; quality or connectionQuality), nothing when it does not.

import { $, el } from './dom.js';

const NOTICE_MS = 4000;
const MAX_NOTICES = 3; // a burst of joins shows the latest few

export class RoomPeople {
  constructor(call) {
    this.call = call;
    this.known = null; // sid -> name of the others, once connected
    this.timers = new Set();
    this.onRoster = () => this.render();
    this.onStatus = () => this.render();
  }

  mount() {
    this.call.addEventListener('roster', this.onRoster);
    this.call.addEventListener('status', this.onStatus);
    $('alone-copy').onclick = () => this.copyLink();
    this.render();
  }

  unmount() {
    this.call.removeEventListener('roster', this.onRoster);
    this.call.removeEventListener('status', this.onStatus);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    $('people-notices').replaceChildren();
    $('alone').hidden = true;
  }

  render() {
    const c = this.call;
    const connected = c.status === 'connected' && !!c.self;
    $('alone').hidden = !connected || c.participants.size > 0;
    if (!connected) return; // a reconnect's empty roster is not everyone leaving
    const now = new Map([...c.participants.values()].map((p) => [p.sid, p.name || p.identity || 'Guest']));
    if (this.known) {
      for (const [sid, name] of now) if (!this.known.has(sid)) this.say(`${name} joined`);
      for (const [sid, name] of this.known) if (!now.has(sid)) this.say(`${name} left`);
    }
    this.known = now;
  }

  say(text) {
    const box = $('people-notices');
    const n = el('p', 'people-notice', { testid: 'people-notice', text });
    box.append(n);
    while (box.children.length > MAX_NOTICES) box.firstChild.remove();
    const t = setTimeout(() => { n.remove(); this.timers.delete(t); }, NOTICE_MS);
    this.timers.add(t);
  }

  // copyLink copies the room's address (never a token: guests get their
  // own, invitations are the host's to hand out).
  async copyLink() {
    const btn = $('alone-copy');
    const link = `${window.location.origin}/r/${encodeURIComponent(this.call.room)}`;
    $('alone-link').value = link;
    try {
      await navigator.clipboard.writeText(link);
      btn.textContent = 'Copied';
    } catch {
      // No clipboard access: the link is selected in its field to copy by hand.
      $('alone-link').hidden = false;
      $('alone-link').select();
      btn.textContent = 'Copy failed: select the link';
    }
  }

  // decorate adds hand and connection quality to a people list item
  // (after ModUI's badges: chat-ui.js's decoratePerson hook).
  decorate(p, it) {
    it.li.dataset.hand = String(!!p.handRaised);
    // ModUI draws the hand for everyone (mod-ui.js); only when it did not.
    if (p.handRaised && !it.badges.querySelector('.person-hand')) {
      it.badges.prepend(el('span', 'person-hand', { testid: 'person-hand', role: 'img', 'aria-label': 'Hand raised', title: 'Hand raised', text: '✋' }));
    }
    const q = typeof p.quality === 'string' ? p.quality : typeof p.connectionQuality === 'string' ? p.connectionQuality : '';
    if (q) {
      it.badges.append(el('span', `person-quality q-${q.replace(/[^a-z]/g, '')}`, { testid: 'person-quality', role: 'img', 'aria-label': `Connection ${q}`, title: `Connection ${q}` }));
    }
  }
}
