// Reactions (docs/protocol.md, "Hands and reactions"): a "React" control
// with the emoji the server accepts; each reaction the room sends floats
// over its sender's tile for a few seconds and shows briefly beside the
// sender in the people list. Nothing is kept.

import { $, el } from './dom.js';
import { addControl } from './controls.js';

// REACTIONS is the server's allow-list (proto.Reactions), in its order.
export const REACTIONS = ['👍', '👏', '😂', '😮', '❤️', '🎉'];

// SHOW_MS is how long a reaction stays on the tile and in the list.
export const SHOW_MS = 3000;

export class Reactions {
  constructor(call) {
    this.call = call;
    this.btn = null;
    this.menu = null;
    this.timers = new Set();
    this.onMessage = (ev) => {
      if (ev.detail && ev.detail.type === 'reaction') this.show(ev.detail.data || {});
    };
    this.onKey = (ev) => {
      if (ev.key === 'Escape' && !this.menu.hidden) {
        this.open(false);
        this.btn.focus();
      }
    };
  }

  mount() {
    this.btn = addControl({ id: 'react-btn', testid: 'react-toggle', glyph: '😊', text: 'React', before: 'chat-btn' });
    this.btn.setAttribute('aria-expanded', 'false');
    this.btn.setAttribute('aria-controls', 'react-menu');
    this.menu = el('div', 'react-menu card', { id: 'react-menu', testid: 'react-menu', role: 'group', 'aria-label': 'Send a reaction' });
    this.menu.hidden = true;
    for (const emoji of REACTIONS) {
      const b = el('button', 'react-pick', { testid: 'react-pick', type: 'button', 'aria-label': `React ${emoji}`, text: emoji });
      b.dataset.emoji = emoji;
      b.addEventListener('click', () => this.call.moderate('reaction', { emoji }));
      this.menu.append(b);
    }
    this.btn.addEventListener('click', () => this.open(this.menu.hidden));
    $('call').append(this.menu);
    this.call.addEventListener('message', this.onMessage);
    document.addEventListener('keydown', this.onKey);
  }

  unmount() {
    this.call.removeEventListener('message', this.onMessage);
    document.removeEventListener('keydown', this.onKey);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.btn.remove();
    this.menu.remove();
  }

  open(on) {
    this.menu.hidden = !on;
    this.btn.setAttribute('aria-expanded', String(on));
  }

  // show floats one reaction over the sender's camera tile and beside
  // its name in the people list.
  show({ sid, identity, emoji }) {
    if (!REACTIONS.includes(emoji)) return;
    const tile = sid ? $('grid').querySelector(`[data-testid="tile"][data-source="camera"][data-participant="${CSS.escape(sid)}"]`) : null;
    if (tile) this.flash(tile, el('span', 'reaction-float', { testid: 'tile-reaction', role: 'img', 'aria-label': `reacted ${emoji}`, text: emoji }));
    const person = identity ? document.querySelector(`[data-testid="person"][data-identity="${CSS.escape(identity)}"]`) : null;
    if (person) this.flash(person, el('span', 'person-reaction', { testid: 'person-reaction', text: emoji }));
  }

  flash(parent, badge) {
    parent.append(badge);
    const t = setTimeout(() => {
      this.timers.delete(t);
      badge.remove();
    }, SHOW_MS);
    this.timers.add(t);
  }
}
