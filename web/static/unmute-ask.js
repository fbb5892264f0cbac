// UnmuteAsk is the participant's side of "ask to unmute" (docs/protocol.md,
// ask_unmute): while a moderator's mute holds its microphone (the room
// lets only moderators unmute), an "Ask to unmute" control asks the
// moderators, who answer with "Allow to unmute" (mod-ui.js).

import { addControl } from './controls.js';

// ASK_GAP_MS is the server's budget: one ask per 10 s.
export const ASK_GAP_MS = 10000;

export class UnmuteAsk {
  constructor(call) {
    this.call = call;
    this.btn = null;
    this.askedUntil = 0;
    this.timer = 0;
    this.onChange = () => this.render();
  }

  mount() {
    this.btn = addControl({ id: 'ask-unmute-btn', testid: 'ask-unmute', glyph: '🙋', text: 'Ask to unmute', before: 'cam-btn' });
    this.btn.addEventListener('click', () => this.ask());
    for (const ev of ['local', 'moderation']) this.call.addEventListener(ev, this.onChange);
    this.render();
  }

  unmount() {
    for (const ev of ['local', 'moderation']) this.call.removeEventListener(ev, this.onChange);
    clearTimeout(this.timer);
    this.btn.remove();
  }

  render() {
    const asked = Date.now() < this.askedUntil;
    this.btn.hidden = !this.call.micLocked;
    this.btn.disabled = asked;
    this.btn.querySelector('.txt').textContent = asked ? 'Asked' : 'Ask to unmute';
    this.btn.title = asked ? 'You asked the moderators to let you unmute' : 'Ask the moderators to let you unmute';
  }

  async ask() {
    const c = this.call;
    if (!c.sig) return;
    this.btn.disabled = true;
    try {
      await c.sig.request('ask_unmute');
      this.askedUntil = Date.now() + ASK_GAP_MS;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.render(), ASK_GAP_MS);
      c.emit('notice', 'Asked the moderators to let you unmute.');
    } catch (err) {
      c.emit('notice', `Could not ask to unmute: ${err.message || err}`);
    }
    this.render();
  }
}
