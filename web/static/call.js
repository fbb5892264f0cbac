// Call is one user's presence in a room across reconnects: it holds the
// local media, the newest token and the participant roster, and replaces
// the Signaling + Session pair whenever the connection breaks
// (docs/protocol.md, "Reconnect").

import { Signaling, SignalingError, PROTOCOL_VERSION, backoff } from './signaling.js';
import { Session } from './session.js';

const RESTART_DEADLINE_MS = 10000; // ICE restart must connect within this
const NO_RECONNECT_BYE = new Set(['replaced', 'removed', 'left']);

export class Call extends EventTarget {
  // media: a LocalMedia; token: JWT; name: display name.
  // relay: '' (any path), 'all' (TURN only), 'udp' or 'tcp' (TURN over
  // that transport only); a diagnostic option, see web/README.md.
  constructor({ token, name, media, url, relay = '', log = console.debug.bind(console) }) {
    super();
    this.relay = relay;
    this.token = token;
    this.name = name;
    this.media = media;
    this.url = url;
    this.log = log;
    this.status = 'idle';
    this.room = '';
    this.self = null;
    this.participants = new Map(); // sid -> participant (others only)
    this.remoteTracks = new Map(); // `${participant}|${trackSid}` -> MediaStreamTrack
    this.sig = null;
    this.session = null;
    this.ended = false;
    this.attempt = 0;
    this.reconnects = 0;
    this.iceRestarts = 0;
    this.restartTimer = 0;
    this.retryTimer = 0;
    this.lastError = null;
  }

  setStatus(status, detail = '') {
    if (this.status === status && !detail) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: { status, detail } }));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  async start() {
    this.setStatus('connecting');
    try {
      await this.connect();
    } catch (err) {
      this.handleConnectError(err);
    }
  }

  // connect builds one Signaling + Session, joins and publishes.
  async connect() {
    this.teardownConnection();
    const sig = new Signaling({ url: this.url, log: this.log });
    this.sig = sig;
    sig.addEventListener('message', (ev) => { if (this.sig === sig) this.onMessage(ev.detail); });
    sig.addEventListener('close', (ev) => { if (this.sig === sig) this.onClose(ev.detail); });
    await sig.open();
    const reply = await sig.request('join', { token: this.token, protocol: PROTOCOL_VERSION, name: this.name });
    if (this.sig !== sig) return;
    const j = reply.data;
    sig.setSilence(j.pingTimeoutMs);
    this.room = j.room;
    this.self = j.participant;
    this.grants = j.grants || {};
    this.participants.clear();
    for (const p of j.participants || []) this.participants.set(p.sid, p);
    this.emit('roster');
    // Chat and call invitations ride on this connection (a link, as
    // Messenger is for chat-only pages).
    this.emit('joined', { sig, data: j });
    const session = new Session({ signaling: sig, iceServers: j.iceServers || [], relay: this.relay, log: this.log });
    this.session = session;
    session.addEventListener('track', (ev) => this.onTrack(ev.detail));
    session.addEventListener('trackremoved', (ev) => this.onTrackRemoved(ev.detail));
    session.addEventListener('broken', (ev) => this.onBroken(ev.detail.target));
    session.addEventListener('state', () => this.refreshStatus());
    this.attempt = 0;
    this.setStatus('connected');
    if (session.relayProblem) this.emit('notice', session.relayProblem);
    if (this.grants.publish === false && this.media.publishable().length > 0) {
      // A view-only token: release camera and microphone (and their
      // indicator lights) instead of holding devices nobody receives.
      this.media.stopAll();
      this.emit('local');
    }
    const items = this.media.publishable();
    if (this.grants.publish !== false && items.length > 0) {
      try {
        await session.publish(items);
      } catch (err) {
        // A refusal (forbidden, negotiation_failed) would repeat on every
        // rejoin, so stay in the call receive-only; anything else is a
        // broken connection and goes to the caller's retry.
        if (!(err instanceof SignalingError)) throw err;
        this.emit('notice', `Cannot send your camera and microphone: ${err.message}`);
      }
    }
  }

  // refreshStatus follows PeerConnection changes: an ICE restart that
  // connects ends 'reconnecting' at once rather than at its deadline.
  refreshStatus() {
    if (this.ended || !this.session || this.retryTimer) return;
    if (this.restartTimer) {
      if (!this.session.connected()) return;
      clearTimeout(this.restartTimer);
      this.restartTimer = 0;
    }
    this.setStatus('connected');
  }

  handleConnectError(err) {
    this.log(`connect: ${err && err.message}`);
    if (err instanceof SignalingError && err.fatal) {
      this.fail(`${err.code}: ${err.message}`);
      return;
    }
    this.scheduleRejoin();
  }

  onMessage(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'offer':
        if (this.session) this.session.handleOffer(d.sdp);
        break;
      case 'candidate':
        if (this.session) this.session.addRemoteCandidate(d.target, d.candidate);
        break;
      case 'participant_joined':
      case 'participant_updated':
        if (!d.participant) break;
        if (this.self && d.participant.sid === this.self.sid) {
          this.self = d.participant;
        } else {
          this.participants.set(d.participant.sid, d.participant);
        }
        this.emit('roster');
        break;
      case 'participant_left':
        this.participants.delete(d.sid);
        for (const key of [...this.remoteTracks.keys()]) {
          if (key.startsWith(`${d.sid}|`)) this.remoteTracks.delete(key);
        }
        this.emit('roster');
        break;
      case 'token':
        if (d.token) this.token = d.token;
        break;
      case 'muted':
        this.media.setEnabledById(d.trackId, !d.muted);
        this.emit('local');
        this.emit('notice', d.muted ? 'A moderator muted you.' : '');
        break;
      case 'bye':
        this.onBye(d.reason || '');
        break;
      case 'error':
        this.onServerError(d, msg.re);
        this.emit('message', msg);
        break;
      default:
        this.emit('message', msg);
        break;
    }
  }

  onServerError(d, re) {
    this.log(`server error ${d.code}: ${d.message}`);
    if (d.code === 'unauthorized' || d.code === 'protocol_version' || d.code === 'not_joined') {
      // The server closes after these; a pending join rejects by itself.
      this.lastError = d;
      return;
    }
    if (!re) this.emit('notice', d.message || d.code);
  }

  onBye(reason) {
    this.log(`bye: ${reason}`);
    if (NO_RECONNECT_BYE.has(reason)) {
      const text = {
        replaced: 'You joined this room from another tab or device.',
        removed: 'You were removed from the call.',
        left: 'You left the call.',
      }[reason];
      this.end(text);
    }
    // shutdown and timeout: the close that follows triggers a rejoin.
  }

  onClose({ code, dead }) {
    if (this.ended) return;
    this.log(`signaling closed (${code}${dead ? ', heartbeat' : ''})`);
    if (this.lastError && this.lastError.code !== 'not_joined') {
      this.fail(`${this.lastError.code}: ${this.lastError.message || ''}`);
      return;
    }
    this.lastError = null;
    // Without signaling an ICE restart cannot be negotiated: rejoin.
    this.scheduleRejoin();
  }

  onBroken(target) {
    if (this.ended || this.restartTimer) return;
    if (!this.sig || !this.sig.isOpen) {
      this.scheduleRejoin();
      return;
    }
    this.log(`${target} connection broken: ICE restart`);
    this.iceRestarts++;
    this.setStatus('reconnecting');
    const session = this.session;
    // On a path that still works the connection state may never change,
    // so check again once the renegotiation is done.
    session.restartIce().then(() => this.refreshStatus(), (err) => this.log(`ice restart: ${err}`));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = 0;
      if (this.session !== session || this.ended) return;
      if (session.connected()) {
        this.setStatus('connected');
      } else {
        this.log('ICE restart did not connect: rejoining');
        this.scheduleRejoin();
      }
    }, RESTART_DEADLINE_MS);
  }

  scheduleRejoin() {
    if (this.ended || this.retryTimer) return;
    this.teardownConnection();
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

  teardownConnection() {
    clearTimeout(this.restartTimer);
    this.restartTimer = 0;
    const sig = this.sig;
    this.sig = null;
    if (sig) sig.close(1000, 'reconnecting');
    if (this.session) this.session.close();
    this.session = null;
    if (this.remoteTracks.size) {
      this.remoteTracks.clear();
      this.emit('roster');
    }
  }

  onTrack({ participant, trackSid, track }) {
    this.remoteTracks.set(`${participant}|${trackSid}`, track);
    this.emit('roster');
  }

  onTrackRemoved({ participant, trackSid, track }) {
    const key = `${participant}|${trackSid}`;
    if (this.remoteTracks.get(key) === track) this.remoteTracks.delete(key);
    this.emit('roster');
  }

  // ----- user actions -----

  setMuted(source, muted) {
    const t = this.media.setEnabled(source, !muted);
    if (t && this.sig) this.sig.send('mute', { trackId: t, muted });
    this.emit('local');
  }

  async shareScreen() {
    const item = await this.media.startScreen(() => this.stopScreen());
    this.emit('local');
    if (!this.session) return; // published by the next (re)join
    try {
      await this.session.publish([item]);
    } catch (err) {
      this.media.stopScreen();
      this.emit('local');
      throw err;
    }
  }

  async stopScreen() {
    const id = this.media.stopScreen();
    this.emit('local');
    if (id && this.session) await this.session.unpublish(id);
  }

  async switchDevice(kind, deviceId) {
    const { trackId, track } = await this.media.switchDevice(kind, deviceId);
    if (this.session && trackId) await this.session.replace(trackId, track);
    this.emit('local');
  }

  leave() {
    if (this.ended) return;
    if (this.sig) this.sig.send('leave');
    this.end('You left the call.');
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
    this.teardownConnection();
    this.setStatus(status, message);
    this.emit('ended', { message, status });
  }

  // ----- debug hook -----

  state() {
    const sess = this.session;
    return {
      status: this.status,
      room: this.room,
      self: this.self ? { sid: this.self.sid, identity: this.self.identity, name: this.self.name } : null,
      participants: [...this.participants.values()].map((p) => ({
        sid: p.sid, identity: p.identity, name: p.name, stream: !!p.stream, notice: p.notice || '',
        tracks: (p.tracks || []).map((t) => ({ sid: t.sid, kind: t.kind, source: t.source, muted: !!t.muted })),
      })),
      remoteTracks: [...this.remoteTracks.keys()],
      publisher: sess ? Session.pcState(sess.pub) : 'none',
      subscriber: sess ? Session.pcState(sess.sub) : 'none',
      signaling: this.sig && this.sig.isOpen ? 'open' : 'closed',
      reconnects: this.reconnects,
      iceRestarts: this.iceRestarts,
      local: this.media.describe(),
    };
  }

  async transport() {
    return this.session ? this.session.transportStats() : {};
  }

  async stats() {
    if (!this.session) return [];
    const list = await this.session.remoteStats();
    return list.map((s) => {
      const p = this.participants.get(s.participant);
      const t = p && (p.tracks || []).find((x) => x.sid === s.trackSid);
      return {
        participant: s.participant,
        name: p ? p.name : '',
        trackSid: s.trackSid,
        source: t ? t.source : '',
        kind: s.kind,
        framesDecoded: s.framesDecoded,
        frameWidth: s.frameWidth,
        frameHeight: s.frameHeight,
        packetsReceived: s.packetsReceived,
        bytesReceived: s.bytesReceived,
      };
    });
  }

  // forceIceRestart runs the recovery used for a broken PeerConnection
  // while signaling is up, so tests can check it end to end.
  forceIceRestart() {
    this.onBroken('publisher');
  }

  // dropConnection simulates a network cut for tests: the WebSocket is
  // closed abruptly, exactly as when a proxy or NAT drops it.
  dropConnection() {
    if (this.sig && this.sig.ws) this.sig.ws.close(4001, 'simulated drop');
  }
}
