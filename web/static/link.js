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
//   retry    {attempt}: a rejoin is scheduled (attempt counts from 1 since
//            the connection was lost)
//   lobby    {status, lobbyId, expiresInMs}: the join waits in the room's
//            lobby (status waiting), or the wait ended (denied, expired,
//            ended); status 'waiting' while held there
//   ended    {message, status} once, when it stops for good

import { Signaling, SignalingError, PROTOCOL_VERSION, backoff } from './signaling.js';

// Errors after which the server closes the connection and a rejoin with
// the same token would be refused again, so the link fails instead.
// `banned`: a moderator banned this identity for the rest of the meeting.
const FATAL_ON_CLOSE = new Set(['unauthorized', 'protocol_version', 'too_many_sessions', 'banned']);

// moveTo opens this page on the node at base (cluster mode, wrong_node)
// with the link's newest token, which the page there reads from the
// fragment. A page cannot keep its WebSocket across origins (the CSP
// allows connect-src 'self' only), so the whole page moves, as it would
// after following a link. The page remembers where it came from (`from`),
// to go back there if the node it moved to dies (homeAfterFailures);
// going home (back to `from`) drops it and names the node it left
// (`left`), which the home node may still name for a few seconds, until
// the dead node's lease lapses: the page must not move back to it.
export function moveTo(base, token) {
  const dest = new URL(window.location.pathname + window.location.search, base);
  dest.searchParams.delete('left');
  if (dest.origin === dest.searchParams.get('from')) {
    dest.searchParams.delete('from');
    dest.searchParams.set('left', window.location.origin);
  } else if (!dest.searchParams.has('from')) {
    dest.searchParams.set('from', window.location.origin);
  }
  dest.hash = `token=${encodeURIComponent(token)}`;
  window.location.assign(dest.toString());
}

// originParam is the origin in the page's query parameter name (moveTo),
// or ''.
function originParam(name) {
  if (typeof window === 'undefined' || !window.location) return '';
  const v = new URLSearchParams(window.location.search).get(name) || '';
  return sameOrigin(v, v) ? v : '';
}

// sameOrigin reports whether url's origin is origin.
function sameOrigin(url, origin) {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
}

// homeAfterFailures is how many failed rejoins in a row send a moved
// page back to the node it came from, which places the room anew: the
// backoff before them adds up to 7.5 s, past cluster.lease_ttl's default
// (6 s), so by then a dead node's rooms can be placed elsewhere.
const homeAfterFailures = 4;

export class Link extends EventTarget {
  // token: JWT; url: WebSocket URL (default: this page's /ws); byeText:
  // bye reason -> message for the reasons that end the link (others, such
  // as shutdown, are followed by a close and a rejoin); `left` is also
  // what leave() says. signaling makes the connection (tests pass a fake).
  // renew, when given, fetches a fresh token when the server refuses the
  // one held as unauthorized (a dev-mode guest after a server restart
  // changed the key); once per join, so a refusal of the fresh token too
  // ends the link. move(base, token) opens the page on another node when
  // the room lives there (cluster mode; tests pass a fake).
  constructor({ token, url, byeText = {}, log = console.debug.bind(console), signaling = (opts) => new Signaling(opts), renew = null, move = moveTo, home = originParam('from'), left = originParam('left') }) {
    super();
    this.token = token;
    this.renew = renew;
    this.renewed = false;
    this.url = url;
    this.byeText = byeText;
    this.log = log;
    this.newSignaling = signaling;
    this.move = move;
    this.home = home; // the node this page was moved from, or empty
    this.left = left; // the dead node this page came home from, until it joins
    this.status = 'idle';
    this.self = null;
    this.sig = null;
    this.ended = false;
    this.attempt = 0; // failed attempts since the last join: the backoff step
    this.reconnects = 0;
    this.retryTimer = 0;
    this.lastError = null; // a fatal server error; the close that follows ends the link
    this.lobbyStatus = ''; // the last `lobby` status of this connection
    this.admission = null; // {sig, resolve, reject} while held in the lobby
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
    let reply = await sig.request('join', this.joinRequest());
    if (this.sig !== sig) return; // ended or replaced while joining
    if (reply.type === 'lobby') {
      // Held in the lobby: `joined` comes (with the join's `re`, after
      // the request is settled) when a moderator admits us.
      reply = await this.waitAdmission(sig, reply.data || {});
      if (this.sig !== sig) return;
    }
    const data = reply.data || {};
    sig.setSilence(data.pingTimeoutMs);
    this.self = data.participant || null;
    this.onJoin(sig, data);
    this.attempt = 0;
    this.left = '';
    this.renewed = false;
    this.emit('joined', { sig, data });
    this.setStatus('connected');
    await this.afterJoin(sig, data);
  }

  waitAdmission(sig, data) {
    this.lobbyStatus = data.status || 'waiting';
    this.setStatus('waiting');
    this.emit('lobby', data);
    return new Promise((resolve, reject) => {
      this.admission = { sig, resolve, reject };
    });
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
    // Cluster mode (docs/cluster.md): the room lives on another node.
    if (err instanceof SignalingError && err.code === 'wrong_node' && err.url && this.left && sameOrigin(err.url, this.left)) {
      // The node we came home from is still named while its lease
      // lasts: wait for it to lapse rather than load a dead page.
      this.scheduleRejoin();
      return;
    }
    if (err instanceof SignalingError && err.code === 'wrong_node' && err.url) {
      this.end(`This meeting is hosted at ${err.url}; opening it there.`);
      this.move(err.url, this.token);
      return;
    }
    // The node this page was moved to does not answer: go back.
    if (this.home && !(err instanceof SignalingError) && this.attempt >= homeAfterFailures) {
      this.end(`The meeting's server is gone; reopening it at ${this.home}.`);
      this.move(this.home, this.token);
      return;
    }
    if (err instanceof SignalingError && err.code === 'unauthorized' && this.canRenew()) {
      this.renewToken();
      return;
    }
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
      case 'joined':
        if (this.admission && this.admission.sig === this.sig) {
          const a = this.admission;
          this.admission = null;
          this.lobbyStatus = '';
          a.resolve(msg);
          return;
        }
        break;
      case 'lobby':
        this.lobbyStatus = d.status || '';
        this.emit('lobby', d);
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
    // A lobby wait that ran out ends with bye `timeout`; rejoining would
    // only knock again.
    const text = this.lobbyStatus === 'expired' ? this.byeText.expired : this.byeText[reason];
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
      if (this.lastError.code === 'unauthorized' && this.canRenew()) {
        this.lastError = null;
        this.renewToken();
        return;
      }
      this.fail(`${this.lastError.code}: ${this.lastError.message || ''}`);
      return;
    }
    this.scheduleRejoin();
  }

  canRenew() {
    return !!this.renew && !this.renewed && !this.ended;
  }

  // renewToken asks for a fresh token, then rejoins with backoff. A
  // failed request (the server still starting) leaves renewing allowed,
  // so the next refusal tries again.
  async renewToken() {
    this.renewed = true;
    this.teardown();
    this.setStatus('reconnecting');
    try {
      const token = await this.renew();
      if (this.ended) return;
      this.token = token;
      this.emit('token', token);
    } catch (err) {
      this.log(`token renewal: ${err && err.message}`);
      this.renewed = false;
    }
    this.scheduleRejoin();
  }

  scheduleRejoin() {
    if (this.ended || this.retryTimer) return;
    this.teardown();
    this.setStatus('reconnecting');
    const delay = backoff(this.attempt++);
    this.log(`rejoin in ${delay} ms`);
    this.emit('retry', { attempt: this.attempt });
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
    if (this.admission) {
      const a = this.admission;
      this.admission = null;
      a.reject(new Error('connection closed while waiting in the lobby'));
    }
    this.lobbyStatus = '';
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
