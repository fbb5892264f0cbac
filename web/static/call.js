// Call is one user's presence in a room across reconnects: a Link that
// also holds the local media and the participant roster, and owns the
// Session (the PeerConnections) of each connection. A broken
// PeerConnection is first repaired with an ICE restart; only when that
// does not connect in time, or signaling itself broke, does it rejoin.

import { Link } from './link.js';
import { SignalingError } from './signaling.js';
import { Session } from './session.js';

const RESTART_DEADLINE_MS = 10000; // ICE restart must connect within this
const BYE_TEXT = {
  replaced: 'You joined this room from another tab or device.',
  removed: 'You were removed from the call.',
  left: 'You left the call.',
};

export class Call extends Link {
  // media: a LocalMedia; token: JWT; name: display name.
  // relay: '' (any path), 'all' (TURN only), 'udp' or 'tcp' (TURN over
  // that transport only); a diagnostic option, see web/README.md.
  constructor({ token, name, media, url, relay = '', log, signaling }) {
    super({ token, url, log, signaling, byeText: BYE_TEXT });
    this.relay = relay;
    this.name = name;
    this.media = media;
    this.room = '';
    this.grants = {};
    this.participants = new Map(); // sid -> participant (others only)
    this.remoteTracks = new Map(); // `${participant}|${trackSid}` -> MediaStreamTrack
    this.session = null;
    this.iceRestarts = 0;
    this.restartTimer = 0;
  }

  joinRequest() {
    return { ...super.joinRequest(), name: this.name };
  }

  onJoin(sig, j) {
    this.room = j.room;
    this.grants = j.grants || {};
    this.participants.clear();
    for (const p of j.participants || []) this.participants.set(p.sid, p);
    this.emit('roster');
    const session = new Session({ signaling: sig, iceServers: j.iceServers || [], relay: this.relay, log: this.log });
    this.session = session;
    session.addEventListener('track', (ev) => this.onTrack(ev.detail));
    session.addEventListener('trackremoved', (ev) => this.onTrackRemoved(ev.detail));
    session.addEventListener('broken', (ev) => this.onBroken(ev.detail.target));
    session.addEventListener('state', () => this.refreshStatus());
  }

  // afterJoin publishes the local media on the new connection.
  async afterJoin() {
    const session = this.session;
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
        // broken connection and goes to the rejoin.
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

  consume(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'offer':
        if (this.session) this.session.handleOffer(d.sdp);
        return true;
      case 'candidate':
        if (this.session) this.session.addRemoteCandidate(d.target, d.candidate);
        return true;
      case 'participant_joined':
      case 'participant_updated':
        if (!d.participant) return true;
        if (this.self && d.participant.sid === this.self.sid) {
          this.self = d.participant;
        } else {
          this.participants.set(d.participant.sid, d.participant);
        }
        this.emit('roster');
        return true;
      case 'participant_left':
        this.participants.delete(d.sid);
        for (const key of [...this.remoteTracks.keys()]) {
          if (key.startsWith(`${d.sid}|`)) this.remoteTracks.delete(key);
        }
        this.emit('roster');
        return true;
      case 'muted':
        this.media.setEnabledById(d.trackId, !d.muted);
        this.emit('local');
        this.emit('notice', d.muted ? 'A moderator muted you.' : '');
        return true;
      default:
        return false;
    }
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

  teardown() {
    clearTimeout(this.restartTimer);
    this.restartTimer = 0;
    super.teardown();
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

  // ----- diagnostics (window.parley) -----

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
}
