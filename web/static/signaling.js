// WebSocket client for the Parley signaling protocol (docs/protocol.md).
// One Signaling object is one connection; reconnecting makes a new one, so
// no state of a dead connection can leak into the next.

export const PROTOCOL_VERSION = 1;

// Errors after which the server closes the connection and a retry with the
// same input cannot succeed.
const FATAL_CODES = new Set(['unauthorized', 'protocol_version']);

export class SignalingError extends Error {
  constructor(code, message, url = '') {
    super(message || code);
    this.code = code;
    this.url = url; // wrong_node: the base URL of the node hosting the room
    this.fatal = FATAL_CODES.has(code);
  }
}

export function wsURL(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

// Signaling emits 'message' (detail: envelope) for every server message
// that is not a reply to a pending request, and 'close' (detail: {code,
// reason, dead}) once. `dead` is true when the heartbeat gave up.
export class Signaling extends EventTarget {
  constructor({ url = wsURL(), silenceMs = 15000, log = () => {} } = {}) {
    super();
    this.url = url;
    this.silenceMs = silenceMs;
    this.log = log;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.closed = false;
    this.lastRx = 0;
    this.watchdog = 0;
  }

  // open resolves when the socket is open, rejects if it fails first.
  open(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        reject(err);
        return;
      }
      this.ws = ws;
      const timer = setTimeout(() => {
        reject(new Error('websocket open timed out'));
        ws.close();
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        this.lastRx = Date.now();
        this.startWatchdog();
        resolve();
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error('websocket error'));
      };
      ws.onclose = (ev) => {
        clearTimeout(timer);
        reject(new Error(`websocket closed (${ev.code})`));
        this.finish(ev.code, ev.reason, false);
      };
      ws.onmessage = (ev) => this.receive(ev.data);
    });
  }

  get isOpen() {
    return !this.closed && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  setSilence(ms) {
    if (ms > 0) this.silenceMs = ms;
  }

  send(type, data) {
    if (!this.isOpen) return false;
    const msg = { type };
    if (data !== undefined) msg.data = data;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  // request sends a message with an id and resolves with the server's
  // reply (the message whose `re` matches), or rejects with a
  // SignalingError when the reply is `error`.
  request(type, data, timeoutMs = 15000) {
    if (!this.isOpen) return Promise.reject(new Error('not connected'));
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${type}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const msg = { type, id };
      if (data !== undefined) msg.data = data;
      this.ws.send(JSON.stringify(msg));
    });
  }

  receive(raw) {
    this.lastRx = Date.now();
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      this.log('signaling: ignoring malformed message');
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    if (msg.type === 'ping') {
      this.send('pong', { ts: msg.data && msg.data.ts });
      return;
    }
    if (msg.re && this.pending.has(msg.re)) {
      const p = this.pending.get(msg.re);
      this.pending.delete(msg.re);
      clearTimeout(p.timer);
      if (msg.type === 'error') {
        const d = msg.data || {};
        p.reject(new SignalingError(d.code, d.message, d.url));
      } else {
        p.resolve(msg);
      }
      // Fatal errors also reach listeners so the caller learns why the
      // connection is about to close.
      if (msg.type !== 'error') return;
    }
    this.dispatchEvent(new CustomEvent('message', { detail: msg }));
  }

  startWatchdog() {
    const tick = Math.min(1000, this.silenceMs / 3);
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastRx > this.silenceMs) {
        this.log(`signaling: nothing received for ${this.silenceMs} ms`);
        this.close(4000, 'heartbeat timeout', true);
      }
    }, tick);
  }

  // close ends the connection; listeners get one 'close' event.
  close(code = 1000, reason = '', dead = false) {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      try { this.ws.close(code, reason); } catch { /* already closing */ }
    }
    this.finish(code, reason, dead);
  }

  finish(code, reason, dead) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('connection closed'));
    }
    this.pending.clear();
    if (this.ws) {
      this.ws.onopen = this.ws.onmessage = this.ws.onerror = this.ws.onclose = null;
    }
    this.dispatchEvent(new CustomEvent('close', { detail: { code, reason, dead } }));
  }
}

// backoff returns the delay before retry number `attempt` (0-based):
// 0.5 s doubling to 10 s, with +-25% jitter so a room full of clients that
// lost the same server does not come back in lockstep.
export function backoff(attempt, rand = Math.random) {
  const base = Math.min(10000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.75 + rand() * 0.5));
}
