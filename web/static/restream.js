// Live restream (docs/protocol.md, "Restream"): while the meeting is
// streamed live to an RTMP server everyone sees a "Live" indicator next
// to "Recording", from the moment the server answers the join, and
// moderators get a Go live / Stop live control that asks for the
// platform's RTMP URL with its stream key. The URL goes to the server
// once, in restream_start; nothing of it is kept or shown here. The
// server decides who may restream; the control is only shown to
// moderators of a server that restreams at all.

import { $, el } from './dom.js';
import { addControl } from './controls.js';

// restreamURLProblem says what is wrong with a URL the server would
// refuse (its own check is the one that counts), or '' when it looks
// usable: rtmp:// or rtmps://, a host and a path (the stream key).
export function restreamURLProblem(raw) {
  const s = (raw || '').trim();
  if (!s) return 'Enter the RTMP server URL with the stream key.';
  if (s.length > 1024) return 'That URL is too long.';
  let u;
  try {
    u = new URL(s);
  } catch {
    return 'That is not a URL.';
  }
  if (u.protocol !== 'rtmp:' && u.protocol !== 'rtmps:') return 'The URL must start with rtmp:// or rtmps://.';
  if (!u.hostname || u.pathname.replace(/\//g, '') === '') return 'The URL needs a host and the stream key after it.';
  return '';
}

export class RestreamUI {
  constructor(call, ask = (q) => window.prompt(q)) {
    this.call = call;
    this.ask = ask;
    this.supported = false; // "joined" carried a restream state
    this.active = false;
    this.badge = null;
    this.btn = null;
    this.onJoined = (ev) => {
      const r = ev.detail && ev.detail.data ? ev.detail.data.restream : undefined;
      this.supported = !!r;
      this.active = !!(r && r.active);
      this.render();
    };
    this.onMessage = (ev) => {
      const m = ev.detail;
      if (!m || m.type !== 'restream') return;
      const r = m.data || {};
      this.supported = true;
      const was = this.active;
      this.active = !!r.active;
      if (this.active && !was) this.call.emit('notice', `This meeting is now streamed live${by(r)}.`);
      if (!r.active && was) this.call.emit('notice', r.reason && r.reason !== 'stopped' ? `Live stream stopped: ${r.reason}.` : 'Live stream stopped.');
      this.render();
    };
    this.onChange = () => this.render();
  }

  mount() {
    this.badge = el('div', 'rec-indicator live-indicator', { testid: 'live-indicator', role: 'status', 'aria-live': 'polite' });
    this.badge.append(el('span', 'rec-dot', { 'aria-hidden': 'true' }), el('span', 'rec-txt', { text: 'Live' }));
    this.badge.hidden = true;
    const rec = document.querySelector('[data-testid="recording-indicator"]');
    (rec || $('conn-status')).after(this.badge);
    this.btn = addControl({ id: 'live-btn', testid: 'live-toggle', glyph: '📡', text: 'Go live', before: 'chat-btn' });
    this.btn.setAttribute('aria-pressed', 'false');
    this.btn.hidden = true;
    this.btn.addEventListener('click', () => this.toggle());
    this.call.addEventListener('joined', this.onJoined);
    this.call.addEventListener('message', this.onMessage);
    this.call.addEventListener('moderation', this.onChange);
    this.call.addEventListener('roster', this.onChange);
    this.render();
  }

  unmount() {
    this.call.removeEventListener('joined', this.onJoined);
    this.call.removeEventListener('message', this.onMessage);
    this.call.removeEventListener('moderation', this.onChange);
    this.call.removeEventListener('roster', this.onChange);
    this.badge.remove();
    this.btn.remove();
  }

  toggle() {
    if (this.active) {
      this.call.moderate('restream_stop');
      return;
    }
    const url = this.ask('Stream this meeting live: the streaming platform\'s RTMP server URL with the stream key (rtmp://… or rtmps://…)');
    if (url === null || url === undefined) return; // cancelled
    const problem = restreamURLProblem(url);
    if (problem) {
      this.call.emit('notice', problem);
      return;
    }
    this.call.moderate('restream_start', { url: url.trim() });
  }

  render() {
    this.badge.hidden = !this.active;
    this.btn.hidden = !(this.supported && this.call.isModerator);
    this.btn.setAttribute('aria-pressed', String(this.active));
    const label = this.active ? 'Stop live' : 'Go live';
    this.btn.title = label;
    this.btn.querySelector('.txt').textContent = label;
  }
}

function by(r) {
  return r.by && (r.by.name || r.by.identity) ? ` (started by ${r.by.name || r.by.identity})` : '';
}
