// Recording (docs/protocol.md, "Recording"): while the room is recorded
// everyone sees a "Recording" indicator in the top bar, from the moment
// the server answers the join; a joiner who would publish is asked first
// (consent): nothing of theirs is sent until they choose "Join and be
// recorded", and "Leave" leaves. Moderators get a Record / Stop
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
      this.startedBy = r && r.active && r.by ? r.by.name || r.by.identity : '';
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
    this.asking = null; // the open consent dialog's promise
  }

  // askConsent shows the consent dialog and resolves true (join and be
  // recorded) or false (leave). A second ask while it is open (a rejoin)
  // shares the answer.
  askConsent() {
    if (this.asking) return this.asking;
    const dlg = $('rec-consent');
    $('rec-consent-text').textContent = `${this.startedBy ? `${this.startedBy} started a recording. ` : ''}` +
      'Your camera, microphone and name will be in it. Nothing of yours is sent until you choose.';
    this.asking = new Promise((resolve) => {
      const done = () => {
        dlg.removeEventListener('close', done);
        dlg.removeEventListener('cancel', keep);
        this.asking = null;
        resolve(dlg.returnValue === 'join');
      };
      // Escape is not an answer: the choice has to be made.
      const keep = (ev) => ev.preventDefault();
      dlg.returnValue = '';
      dlg.addEventListener('close', done);
      dlg.addEventListener('cancel', keep);
      dlg.showModal();
    });
    return this.asking;
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
    this.call.askRecordingConsent = () => this.askConsent();
    this.call.addEventListener('status', this.onStatus);
    this.call.addEventListener('message', this.onMessage);
    this.call.addEventListener('moderation', this.onChange);
    this.call.addEventListener('roster', this.onChange);
    this.render();
  }

  unmount() {
    this.call.removeEventListener('joined', this.onJoined);
    this.call.askRecordingConsent = null;
    const dlg = $('rec-consent');
    if (dlg.open) dlg.close('leave');
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
