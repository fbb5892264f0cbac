// FakeSignaling stands in for Signaling (signaling.js) in tests of the
// models that use a connection: a script answers requests, the test opens,
// pushes messages and closes it by hand, and everything sent is recorded.

import { SignalingError } from '../static/signaling.js';

export class FakeSignaling extends EventTarget {
  // answer(type, data) returns the reply's data, or throws a
  // SignalingError for an error reply; a returned promise is awaited.
  // openError makes open() fail (a connection that never comes up).
  // replyType(type) names the reply's type (default: the request's, e.g.
  // 'lobby' for a join held in the lobby).
  constructor({ answer = () => ({}), openError = null, replyType = (type) => type } = {}) {
    super();
    this.answer = answer;
    this.replyType = replyType;
    this.openError = openError;
    this.isOpen = false;
    this.closed = false;
    this.requests = []; // {type, data, timeoutMs}
    this.sent = []; // {type, data}
    this.silenceMs = 0;
  }

  async open() {
    if (this.openError) throw this.openError;
    this.isOpen = true;
  }

  setSilence(ms) {
    this.silenceMs = ms;
  }

  async request(type, data, timeoutMs) {
    if (!this.isOpen) throw new Error('not connected');
    this.requests.push({ type, data, timeoutMs });
    return { type: this.replyType(type), data: await this.answer(type, data) };
  }

  send(type, data) {
    if (!this.isOpen) return false;
    this.sent.push({ type, data });
    return true;
  }

  // push delivers a server message as Signaling does for unsolicited ones.
  push(type, data, re) {
    const msg = { type, data };
    if (re) msg.re = re;
    this.dispatchEvent(new CustomEvent('message', { detail: msg }));
  }

  close(code = 1000, reason = '') {
    if (this.closed) return;
    this.closed = true;
    this.isOpen = false;
    this.dispatchEvent(new CustomEvent('close', { detail: { code, reason, dead: false } }));
  }
}

export function refusal(code, message = code) {
  return new SignalingError(code, message);
}
