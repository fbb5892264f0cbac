// Link is a reconnecting joined connection (docs/protocol.md, "Sessions"
// and "Reconnect"): it opens a Signaling, joins with the newest token it
// holds, and when the connection breaks it rejoins with backoff, until the
// server refuses the token or the link ends. A reconnect builds a new
// Signaling, so nothing of a dead connection leaks into the next.
//
// Call (a room with media) and Messenger (chat only) extend it; Chat and
// Calls ride on either through its events:
//   status   {status, detail}: connecting, connected, reconnecting, closed, failed
//   joined   {sig, data} after every (re)join, data being the join reply
//   message  every server message the subclass does not consume itself
//   token    the refreshed token (a string)
//   notice   a server error that answers no request, for the user
//   ended    {message, status} once, when it stops for good

import { Signaling, SignalingError, PROTOCOL_VERSION, backoff } from './signaling.js';

// Errors after which the server closes the connection and a rejoin with
// the same token would be refused again, so the link fails instead.
const FATAL_ON_CLOSE = new Set(['unauthorized', 'protocol_version', 'too_many_sessions']);

export class Link extends EventTarget {
  // token: JWT; url: WebSocket URL (default: this page's /ws); byeText:
  // bye reason -> message for the reasons that end the link (others, such
  // as shutdown, are followed by a close and a rejoin); `left` is also
  // what leave() says. signaling makes the connection (tests pass a fake).
  constructor({ token, url, byeText = {}, log = console.debug.bind(console), signaling = (opts) => new Signaling(opts) }) {
    super();
    this.token = token;
    this.url = url;
    this.byeText = byeText;
    this.log = log;
    this.newSignaling = signaling;
    this.status = 'idle';
    this.self = null;
    this.sig = null;
    this.ended = false;
    this.attempt = 0; // failed attempts since the last join: the backoff step
    this.reconnects = 0;
    this.retryTimer = 0;
    this.lastError = null; // a fatal server error; the close that follows ends the link
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setStatus(status, detail = '') {
    if (this.status === status && !detail) return;
    this.status = status;
    this.emit('status', { status, detail });
  }

  async start() {
    this.setStatus('connecting');
    try {
      await this.connect();
    } catch (err) {
      this.handleConnectError(err);
    }
  }

  // connect opens one Signaling and joins; it throws when either fails.
  async connect() {
    this.teardown();
    const sig = this.newSignaling({ url: this.url, log: this.log });
    this.sig = sig;
    sig.addEventListener('message', (ev) => { if (this.sig === sig) this.onMessage(ev.detail); });
    sig.addEventListener('close', (ev) => { if (this.sig === sig) this.onClose(ev.detail || {}); });
    await sig.open();
    const reply = await sig.request('join', this.joinRequest());
    if (this.sig !== sig) return; // ended or replaced while joining
    const data = reply.data || {};
    sig.setSilence(data.pingTimeoutMs);
    this.self = data.participant || null;
    this.onJoin(sig, data);
    this.attempt = 0;
    this.emit('joined', { sig, data });
    this.setStatus('connected');
    await this.afterJoin(sig, data);
  }

  // ----- what subclasses extend -----

  // joinRequest is the body of `join`.
  joinRequest() {
    return { token: this.token, protocol: PROTOCOL_VERSION };
  }

  // onJoin takes in the join reply before listeners hear 'joined'.
  onJoin() {}

  // afterJoin runs once the link is connected; a throw counts as a broken
  // connection and leads to a rejoin.
  async afterJoin() {}

  // consume handles a server message that belongs to the subclass and
  // returns true; anything else goes out as 'message'.
  consume() {
    return false;
  }

  // ----- connection events -----

  handleConnectError(err) {
    this.log(`connect: ${err && err.message}`);
    if (err instanceof SignalingError && (err.fatal || FATAL_ON_CLOSE.has(err.code))) {
      this.fail(`${err.code}: ${err.message}`);
      return;
    }
    this.scheduleRejoin();
  }

  onMessage(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'token':
        if (d.token) {
          this.token = d.token;
          this.emit('token', d.token);
        }
        return;
      case 'bye':
        this.onBye(d.reason || '');
        return;
      case 'error':
        this.onServerError(d, msg.re);
        break;
      default:
        break;
    }
    if (!this.consume(msg)) this.emit('message', msg);
  }

  onBye(reason) {
    this.log(`bye: ${reason}`);
    const text = this.byeText[reason];
    if (text) this.end(text);
    // Any other reason (shutdown, timeout): the close that follows rejoins.
  }

  onServerError(d, re) {
    this.log(`server error ${d.code}: ${d.message}`);
    if (FATAL_ON_CLOSE.has(d.code)) {
      this.lastError = d;
      return;
    }
    // not_joined is followed by a close, and the rejoin answers it.
    if (!re && d.code !== 'not_joined') this.emit('notice', d.message || d.code);
  }

  onClose({ code, dead }) {
    if (this.ended) return;
    this.log(`signaling closed (${code}${dead ? ', heartbeat' : ''})`);
    if (this.lastError) {
      this.fail(`${this.lastError.code}: ${this.lastError.message || ''}`);
      return;
    }
    this.scheduleRejoin();
  }

  scheduleRejoin() {
    if (this.ended || this.retryTimer) return;
    this.teardown();
    this.setStatus('reconnecting');
    const delay = backoff(this.attempt++);
    this.log(`rejoin in ${delay} ms`);
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = 0;
      if (this.ended) return;
      this.reconnects++;
      try {
        await this.connect();
      } catch (err) {
        this.handleConnectError(err);
      }
    }, delay);
  }

  // teardown drops the current connection; subclasses also drop what
  // rode on it.
  teardown() {
    const sig = this.sig;
    this.sig = null;
    if (sig) sig.close(1000, 'reconnecting');
  }

  // ----- ending -----

  // leave tells the server first, so the others see a leave at once
  // rather than after the server's timeout.
  leave(message = this.byeText.left || 'Left.') {
    if (this.ended) return;
    if (this.sig) this.sig.send('leave');
    this.end(message);
  }

  fail(message) {
    this.lastError = null;
    this.end(message, 'failed');
  }

  end(message, status = 'closed') {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.teardown();
    this.setStatus(status, message);
    this.emit('ended', { message, status });
  }
}
