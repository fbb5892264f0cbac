// TileMenu is the "⋯" menu on a video tile: pin the tile (shown large),
// show it fullscreen, and for another person's camera tile the volume of
// their voice in this browser. The UI owns what the actions do. Pin and
// Fullscreen form an ARIA menu (arrow keys move between them, menu-keys.js);
// the volume slider follows it, reached with Tab, since its own arrow
// keys change the volume.

import { el } from './dom.js';
import { menuKeys } from './menu-keys.js';

let menus = 0; // ids for aria-controls

export class TileMenu {
  // actions: {pin(), fullscreen(), volume(0..1)}.
  constructor(tileEl, actions) {
    const id = `tile-menu-${++menus}`;
    this.button = el('button', 'tile-more', { type: 'button', testid: 'tile-menu', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': id, text: '⋯' });
    this.panel = el('div', 'tile-menu', { testid: 'tile-menu-panel' });
    this.panel.hidden = true;
    this.menu = el('div', 'tile-menu-items', { role: 'menu', id, testid: 'tile-menu-items' });
    this.pinBtn = el('button', 'small', { type: 'button', role: 'menuitemcheckbox', testid: 'tile-pin', 'aria-checked': 'false', text: 'Pin' });
    this.fullBtn = el('button', 'small', { type: 'button', role: 'menuitem', testid: 'tile-fullscreen', text: 'Fullscreen' });
    this.menu.append(this.pinBtn, this.fullBtn);
    menuKeys(this.menu);
    this.volRow = el('label', 'tile-volume');
    this.volText = el('span', '', { text: 'Volume' });
    this.vol = el('input', '', { type: 'range', min: '0', max: '100', step: '5', testid: 'tile-volume' });
    this.vol.value = '100';
    this.volRow.append(this.volText, this.vol);
    this.panel.append(this.menu, this.volRow);
    tileEl.append(this.button, this.panel);
    this.button.onclick = (ev) => {
      ev.stopPropagation();
      this.setOpen(this.panel.hidden);
    };
    // Down or Up on the button opens the menu at its first or last item.
    this.button.addEventListener('keydown', (ev) => {
      if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
      ev.preventDefault();
      this.setOpen(true, ev.key === 'ArrowUp' ? 'last' : 'first');
    });
    this.panel.onclick = (ev) => ev.stopPropagation(); // a click inside is not "elsewhere"
    this.pinBtn.onclick = () => { actions.pin(); this.setOpen(false); };
    this.fullBtn.onclick = () => { actions.fullscreen(); this.setOpen(false); };
    this.vol.oninput = () => actions.volume(Number(this.vol.value) / 100);
    this.fullBtn.hidden = !tileEl.requestFullscreen;
  }

  // setOpen shows or hides the menu; an opened menu focuses its first
  // (or, with at 'last', its last) item.
  setOpen(open, at = 'first') {
    this.panel.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (!open) return;
    const items = [this.pinBtn, this.fullBtn].filter((b) => !b.hidden);
    if (items.length) items[at === 'last' ? items.length - 1 : 0].focus();
  }

  get open() {
    return !this.panel.hidden;
  }

  // update names the controls after the tile's person (screen readers hear
  // whose tile it is) and shows the current pin and volume.
  update({ name, pinned, volume, hasVoice }) {
    this.button.setAttribute('aria-label', `Options for ${name}`);
    this.button.title = `Options for ${name}`;
    this.pinBtn.textContent = pinned ? 'Unpin' : 'Pin';
    this.pinBtn.setAttribute('aria-checked', String(pinned));
    this.menu.setAttribute('aria-label', `Options for ${name}`);
    this.fullBtn.setAttribute('aria-label', `Show ${name} fullscreen`);
    this.vol.setAttribute('aria-label', `Volume of ${name}`);
    this.volRow.hidden = !hasVoice;
    const v = String(Math.round(volume * 100));
    if (this.vol.value !== v && document.activeElement !== this.vol) this.vol.value = v;
  }
}
