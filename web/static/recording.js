// Recording (docs/protocol.md, "Recording"): while the room is recorded
// everyone sees a "Recording" indicator in the top bar, from the moment
// the server answers the join (before anything of theirs is recorded a
// joiner is also told in a notice), and moderators get a Record / Stop
// recording control. The server decides who may record; the control is
// only shown to moderators of a server that records at all.

import { $, el } from './dom.js';
import { addControl } from './controls.js';

export class RecordingUI {
  constructor(call) {
    this.call = call;
    this.supported = false; // "joined" carried a recording state
    this.active = false;
    this.pending = ''; // the joiner's notice, shown once connected
    this.badge = null;
    this.btn = null;
    this.onJoined = (ev) => {
      const r = ev.detail && ev.detail.data ? ev.detail.data.recording : undefined;
      this.supported = !!r;
      const was = this.active;
      this.active = !!(r && r.active);
      // Said once connected: the status pill clears notices then.
      this.pending = this.active && !was ? `This meeting is being recorded${by(r)}.` : '';
      this.render();
    };
    this.onStatus = (ev) => {
      if (this.pending && ev.detail && ev.detail.status === 'connected') {
        this.call.emit('notice', this.pending);
        this.pending = '';
      }
    };
    this.onMessage = (ev) => {
      const m = ev.detail;
      if (!m || m.type !== 'recording') return;
      const r = m.data || {};
      this.supported = true;
      this.active = !!r.active;
      if (!r.active && r.reason && r.reason !== 'stopped') this.call.emit('notice', `Recording stopped: ${r.reason}.`);
      this.render();
    };
    this.onChange = () => this.render();
  }

  mount() {
    this.badge = el('div', 'rec-indicator', { testid: 'recording-indicator', role: 'status', 'aria-live': 'polite' });
    this.badge.append(el('span', 'rec-dot', { 'aria-hidden': 'true' }), el('span', 'rec-txt', { text: 'Recording' }));
    this.badge.hidden = true;
    $('conn-status').after(this.badge);
    this.btn = addControl({ id: 'record-btn', testid: 'record-toggle', glyph: '⏺', text: 'Record', before: 'chat-btn' });
    this.btn.setAttribute('aria-pressed', 'false');
    this.btn.hidden = true;
    this.btn.addEventListener('click', () => this.call.moderate(this.active ? 'recording_stop' : 'recording_start'));
    this.call.addEventListener('joined', this.onJoined);
    this.call.addEventListener('status', this.onStatus);
    this.call.addEventListener('message', this.onMessage);
    this.call.addEventListener('moderation', this.onChange);
    this.call.addEventListener('roster', this.onChange);
    this.render();
  }

  unmount() {
    this.call.removeEventListener('joined', this.onJoined);
    this.call.removeEventListener('status', this.onStatus);
    this.call.removeEventListener('message', this.onMessage);
    this.call.removeEventListener('moderation', this.onChange);
    this.call.removeEventListener('roster', this.onChange);
    this.badge.remove();
    this.btn.remove();
  }

  render() {
    this.badge.hidden = !this.active;
    this.btn.hidden = !(this.supported && this.call.isModerator);
    this.btn.setAttribute('aria-pressed', String(this.active));
    const label = this.active ? 'Stop recording' : 'Record';
    this.btn.title = label;
    this.btn.querySelector('.txt').textContent = label;
  }
}

function by(r) {
  return r.by && (r.by.name || r.by.identity) ? ` (started by ${r.by.name || r.by.identity})` : '';
}
