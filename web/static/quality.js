// QualityUI shows each participant's connection quality
// ("connection_quality", docs/protocol.md) as signal bars on their camera
// tile; call.js puts the level on the participant views, where the people
// list (people.js) shows it too. Only a level worse than excellent is
// drawn on a tile, so a healthy call stays uncluttered, as in Jitsi.

import { $, el } from './dom.js';

// BARS is how many of three bars each level lights.
const BARS = Object.freeze({ excellent: 3, good: 2, poor: 1, lost: 0 });

// qualityLabel is the spoken and hover text of a level.
export function qualityLabel(q) {
  return q === 'lost' ? 'Connection lost' : `Connection ${q}`;
}

export class QualityUI {
  constructor(call) {
    this.call = call;
    this.observer = null;
    this.onChange = () => this.markTiles();
  }

  mount() {
    this.call.addEventListener('roster', this.onChange);
    this.call.addEventListener('local', this.onChange);
    this.observer = new MutationObserver(() => this.markTiles());
    this.observer.observe($('grid'), { childList: true });
    this.markTiles();
  }

  unmount() {
    this.call.removeEventListener('roster', this.onChange);
    this.call.removeEventListener('local', this.onChange);
    if (this.observer) this.observer.disconnect();
  }

  markTiles() {
    const c = this.call;
    const bySid = new Map([...c.participants.values()].map((p) => [p.sid, p]));
    if (c.self) bySid.set(c.self.sid, c.self);
    for (const tile of $('grid').querySelectorAll('[data-testid="tile"]')) {
      const p = bySid.get(tile.dataset.participant);
      const q = p && tile.dataset.source === 'camera' && Object.hasOwn(BARS, p.quality) ? p.quality : '';
      let badge = tile.querySelector('.tile-quality');
      if (!q || q === 'excellent') {
        if (badge) badge.remove();
        continue;
      }
      if (!badge) {
        badge = el('span', 'tile-quality', { testid: 'tile-quality', role: 'img' });
        for (let i = 0; i < 3; i++) badge.append(el('i', 'bar'));
        tile.append(badge);
      }
      badge.dataset.quality = q;
      badge.setAttribute('aria-label', qualityLabel(q));
      badge.title = qualityLabel(q);
      [...badge.children].forEach((b, i) => b.classList.toggle('on', i < BARS[q]));
    }
  }
}
