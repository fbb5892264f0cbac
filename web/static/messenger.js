// Messenger is a messaging session without a call (docs/protocol.md,
// Sessions): a WebSocket joined with a room-less token carrying the chat
// grant. Like Call it survives network drops: it rejoins with the newest
// token it holds, retrying with backoff. It is a link for Chat and Calls:
// it emits 'joined' ({sig, data}) on every (re)join and 'message' for
// every server message.

import { Signaling, SignalingError, PROTOCOL_VERSION, backoff } from './signaling.js';

export class Messenger extends EventTarget {
  constructor({ token, url, log = console.debug.bind(console), onToken = () => {} }) {
    super();
    this.token = token;
    this.url = url;
    this.log = log;
    this.onToken = onToken; // called with each refreshed token
    this.sig = null;
    this.status = 'idle';
    this.self = null;
    this.attempt = 0;
    this.reconnects = 0;
    this.retryTimer = 0;
    this.ended = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setStatus(status, detail = '') {
    this.status = status;
    this.emit('status', { status, detail });
  }

  async start() {
    this.setStatus('connecting');
    try {
      await this.connect();
    } catch (err) {
      this.onConnectError(err);
    }
  }

  async connect() {
    this.teardown();
    const sig = new Signaling({ url: this.url, log: this.log });
    this.sig = sig;
    sig.addEventListener('message', (ev) => { if (this.sig === sig) this.onMessage(ev.detail); });
    sig.addEventListener('close', () => { if (this.sig === sig) this.onClose(); });
    await sig.open();
    const reply = await sig.request('join', { token: this.token, protocol: PROTOCOL_VERSION });
    if (this.sig !== sig) return;
    sig.setSilence(reply.data.pingTimeoutMs);
    this.self = reply.data.participant;
    this.attempt = 0;
    this.setStatus('connected');
    this.emit('joined', { sig, data: reply.data });
  }

  onConnectError(err) {
    this.log(`messenger connect: ${err && err.message}`);
    if (err instanceof SignalingError && err.fatal) {
      this.end(`${err.code}: ${err.message}`, 'failed');
      return;
    }
    this.scheduleRejoin();
  }

  onMessage(msg) {
    const d = msg.data || {};
    if (msg.type === 'token' && d.token) {
      this.token = d.token;
      this.onToken(d.token);
    } else if (msg.type === 'bye' && (d.reason === 'removed' || d.reason === 'left')) {
      this.end(d.reason === 'removed' ? 'You were signed out by the server.' : 'Signed out.');
      return;
    } else if (msg.type === 'error' && (d.code === 'unauthorized' || d.code === 'too_many_sessions')) {
      this.lastError = d;
    }
    this.emit('message', msg);
  }

  onClose() {
    if (this.ended) return;
    if (this.lastError) {
      const e = this.lastError;
      this.lastError = null;
      this.end(`${e.code}: ${e.message || ''}`, 'failed');
      return;
    }
    this.scheduleRejoin();
  }

  scheduleRejoin() {
    if (this.ended || this.retryTimer) return;
    this.teardown();
    this.setStatus('reconnecting');
    const delay = backoff(this.attempt++);
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = 0;
      if (this.ended) return;
      this.reconnects++;
      try {
        await this.connect();
      } catch (err) {
        this.onConnectError(err);
      }
    }, delay);
  }

  teardown() {
    const sig = this.sig;
    this.sig = null;
    if (sig) sig.close(1000, 'reconnecting');
  }

  end(message, status = 'closed') {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.retryTimer);
    if (this.sig) this.sig.send('leave');
    this.teardown();
    this.setStatus(status, message);
    this.emit('ended', { message, status });
  }

  // dropConnection simulates a network cut for tests.
  dropConnection() {
    if (this.sig && this.sig.ws) this.sig.ws.close(4001, 'simulated drop');
  }
}
