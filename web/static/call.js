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
  denied: 'The host did not let you in.',
  expired: 'Nobody let you in before the waiting time ran out.',
  ended: 'The host ended the meeting.',
};

// nameOf names the `by` of a moderation message for people.
function nameOf(by) {
  return (by && (by.name || by.identity)) || 'The host';
}

export class Call extends Link {
  // media: a LocalMedia; token: JWT; name: display name.
  // relay: '' (any path), 'all' (TURN only), 'udp' or 'tcp' (TURN over
  // that transport only); a diagnostic option, see web/README.md.
  constructor({ token, name, media, url, relay = '', log, signaling, renew }) {
    super({ token, url, log, signaling, renew, byeText: BYE_TEXT });
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
    // Moderation (docs/protocol.md, "Moderation"): the room's settings,
    // the lobby entries a moderator sees (lobbyId -> knock), whether a
    // moderator muted our microphone, and the last `moderated` received.
    this.settings = {};
    this.lobby = new Map();
    this.modMutedMic = false;
    this.lastModerated = null;
  }

  get isModerator() {
    return !!(this.self && this.self.moderator);
  }

  // mayShareScreen: the room's screenShare setting lets us share.
  get mayShareScreen() {
    return this.isModerator || this.settings.screenShare !== 'moderators';
  }

  // micLocked: a moderator muted the microphone and the room lets only
  // moderators unmute it.
  get micLocked() {
    return this.modMutedMic && !!this.settings.moderatorsUnmuteOnly && !this.isModerator;
  }

  joinRequest() {
    return { ...super.joinRequest(), name: this.name };
  }

  onJoin(sig, j) {
    this.room = j.room;
    // A recorded meeting asks the joiner before publishing anything
    // (afterJoin); a consent given holds for the rest of this call.
    this.recordingActive = !!(j.recording && j.recording.active);
    this.grants = j.grants || {};
    this.settings = j.settings || {};
    this.lobby.clear(); // a moderator gets the waiting entries again after joined
    this.emit('moderation');
    this.participants.clear();
    // The tracks of the last connection stayed while it was down (so the
    // grid does not show everyone as camera-off); this one brings its own.
    this.remoteTracks.clear();
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
      if (this.recordingActive && !this.recordingConsent && this.askRecordingConsent) {
        // Nothing of ours is sent, so nothing is recorded, until the
        // user agrees; declining leaves the meeting.
        if (!(await this.askRecordingConsent())) {
          this.leave('You left: the meeting is being recorded.');
          return;
        }
        this.recordingConsent = true;
        if (this.session !== session) return; // reconnected meanwhile: that join publishes
      }
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
        {
          // The last connection_quality level stays until the next one.
          const prev = this.self && d.participant.sid === this.self.sid ? this.self : this.participants.get(d.participant.sid);
          if (prev && prev.quality && !d.participant.quality) d.participant.quality = prev.quality;
        }
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
      case 'connection_quality': {
        // The level goes on the participant views (self included), where
        // the people list and the tiles (quality.js) read it.
        const level = new Map((Array.isArray(d.participants) ? d.participants : []).map((x) => [x.identity, x.quality]));
        for (const p of [this.self, ...this.participants.values()]) {
          if (p && level.has(p.identity)) p.quality = level.get(p.identity);
        }
        this.emit('roster');
        return true;
      }
      case 'active_layers':
        if (this.session) this.session.setActiveLayers(d.trackId, d.rids);
        return true;
      case 'speakers':
        // activeSince: when the active speaker last changed (ms since the
        // epoch), for tests that time the switch.
        this.speakers = {
          active: d.active || '',
          speakers: Array.isArray(d.speakers) ? d.speakers : [],
          activeSince: this.speakers && this.speakers.active === (d.active || '') ? this.speakers.activeSince : Date.now(),
        };
        this.emit('speakers', this.speakers);
        return true;
      case 'room_settings':
        if (d.settings) this.settings = d.settings;
        this.emit('moderation');
        this.emit('local');
        return true;
      case 'lobby_knock':
        if (d.lobbyId) {
          const fresh = !this.lobby.has(d.lobbyId);
          this.lobby.set(d.lobbyId, d);
          if (fresh) this.emit('knock', d);
          this.emit('moderation');
        }
        return true;
      case 'lobby_left':
        this.lobby.delete(d.lobbyId);
        this.emit('moderation');
        return true;
      case 'moderated':
        this.onModerated(d);
        return true;
      default:
        return false;
    }
  }

  // onModerated tells the user what a moderator did to them.
  onModerated(d) {
    this.lastModerated = d;
    const who = nameOf(d.by);
    const what = { microphone: 'microphone', camera: 'camera', screen: 'screen share' }[d.source] || d.source;
    switch (d.action) {
      case 'mute':
        if (d.source === 'microphone') this.modMutedMic = true;
        if (d.source === 'screen' && this.media.screen) this.stopScreen().catch((err) => this.log(`stop screen: ${err}`));
        this.emit('notice', d.source === 'microphone' && this.settings.moderatorsUnmuteOnly && !this.isModerator
          ? `${who} muted your microphone. Only a moderator can unmute it.`
          : `${who} ${d.source === 'microphone' ? 'muted' : 'stopped'} your ${what}.`);
        break;
      case 'allow_unmute':
        this.modMutedMic = false;
        this.emit('notice', `${who} allowed you to unmute your microphone.`);
        break;
      case 'promote':
        this.emit('notice', `${who} made you a moderator.`);
        break;
      case 'demote':
        this.emit('notice', `${who} made you no longer a moderator.`);
        break;
      case 'lower_hand':
        this.emit('notice', `${who} lowered your hand.`);
        break;
      default:
        break; // remove and end: the bye that follows ends the call
    }
    this.emit('local');
    this.emit('moderation');
  }

  onBye(reason) {
    const m = this.lastModerated;
    if (reason === 'removed' && m && m.action === 'remove') {
      this.log(`bye: ${reason}`);
      this.end(`You were removed from the meeting by ${nameOf(m.by)}.${m.ban ? ' You cannot rejoin this meeting.' : ''}`);
      return;
    }
    if (reason === 'ended' && m && m.action === 'end' && m.by && m.by.identity && this.self && m.by.identity === this.self.identity) {
      this.log(`bye: ${reason}`);
      this.end('You ended the meeting for everyone.');
      return;
    }
    super.onBye(reason);
  }

  // moderate sends a moderator's request (docs/protocol.md,
  // "Moderator actions"); a refusal comes back as a notice.
  moderate(type, data) {
    if (!this.sig || !this.sig.send(type, data)) this.emit('notice', 'Not connected: try again in a moment.');
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
    // Roster and remote tracks stay until the next join replaces them:
    // while reconnecting the grid shows who was there, marked as such.
    this.emit('roster');
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
    if (source === 'microphone' && !muted && this.micLocked) {
      this.emit('notice', 'A moderator muted you: only a moderator can unmute your microphone.');
      return;
    }
    if (source === 'microphone' && !muted) this.modMutedMic = false;
    const t = this.media.setEnabled(source, !muted);
    if (t && this.sig) this.sig.send('mute', { trackId: t, muted });
    this.emit('local');
  }

  // retryMedia asks for camera and microphone again (after the user
  // allowed them) and publishes what it got; false: still nothing.
  async retryMedia() {
    await this.media.open();
    this.emit('local');
    const items = this.media.publishable().filter((i) => i.source !== 'screen');
    if (!items.length) return false;
    // Without a session the next (re)join publishes them.
    if (this.session && this.grants.publish !== false) await this.session.publish(items);
    return true;
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
      self: this.self ? { sid: this.self.sid, identity: this.self.identity, name: this.self.name, moderator: !!this.self.moderator, handRaised: !!this.self.handRaised, quality: this.self.quality || '' } : null,
      settings: { ...this.settings },
      lobby: [...this.lobby.values()].map((e) => ({ lobbyId: e.lobbyId, identity: e.identity, name: e.name })),
      lobbyStatus: this.lobbyStatus,
      micLocked: this.micLocked,
      speakers: this.speakers || null,
      participants: [...this.participants.values()].map((p) => ({
        sid: p.sid, identity: p.identity, name: p.name, stream: !!p.stream, notice: p.notice || '', moderator: !!p.moderator,
        handRaised: !!p.handRaised, handRaisedAt: p.handRaisedAt || 0, quality: p.quality || '',
        tracks: (p.tracks || []).map((t) => ({ sid: t.sid, kind: t.kind, source: t.source, muted: !!t.muted })),
      })),
      remoteTracks: [...this.remoteTracks.keys()],
      publisher: sess ? Session.pcState(sess.pub) : 'none',
      publisherConnectedAt: sess ? sess.connectedAt.publisher : 0,
      subscriber: sess ? Session.pcState(sess.sub) : 'none',
      signaling: this.sig && this.sig.isOpen ? 'open' : 'closed',
      reconnects: this.reconnects,
      iceRestarts: this.iceRestarts,
      local: this.media.describe(),
    };
  }

  // outbound: the publisher's encodings (session.outboundStats).
  async outbound() {
    return this.session ? this.session.outboundStats() : [];
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
        totalSamplesReceived: s.totalSamplesReceived,
        concealedSamples: s.concealedSamples,
        codec: s.codec,
        freezeCount: s.freezeCount,
        totalFreezesDuration: s.totalFreezesDuration,
        jitterBufferDelay: s.jitterBufferDelay,
        jitterBufferEmittedCount: s.jitterBufferEmittedCount,
        retransmittedPacketsReceived: s.retransmittedPacketsReceived,
      };
    });
  }
}
