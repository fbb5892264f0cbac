// Session owns the two PeerConnections of one signaling connection:
// the publisher (client offers, server answers) and the subscriber (server
// offers, client answers). Negotiations on each connection run one at a
// time through a promise chain, so an offer never overlaps another.

import { ActiveLayers } from './active-layers.js';

const RESTART_GRACE_MS = 5000; // 'disconnected' this long counts as broken

export class Session extends EventTarget {
  // signaling: a connected Signaling; iceServers from `joined`; relay:
  // '' or a forced-relay mode (see relayConfig).
  constructor({ signaling, iceServers = [], relay = '', log = () => {} }) {
    super();
    this.sig = signaling;
    this.log = log;
    this.closed = false;
    const { servers, policy, problem } = relayConfig(iceServers, relay);
    this.relayProblem = problem;
    const config = { iceServers: servers, iceTransportPolicy: policy, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
    this.pub = new RTCPeerConnection(config);
    this.sub = new RTCPeerConnection(config);
    this.pending = { publisher: [], subscriber: [] };
    this.pubChain = Promise.resolve();
    this.subChain = Promise.resolve();
    this.senders = new Map(); // published trackId -> RTCRtpSender
    this.layers = new ActiveLayers({ sender: (id) => this.senders.get(id), idle: () => this.pubChain, log });
    this.remote = new Map(); // MediaStreamTrack.id -> {participant, trackSid, track}
    this.badSince = { publisher: 0, subscriber: 0 };
    this.connectedAt = { publisher: 0, subscriber: 0 }; // ms since the epoch
    for (const [target, pc] of [['publisher', this.pub], ['subscriber', this.sub]]) {
      pc.onicecandidate = (ev) => {
        // A null candidate only marks the end of gathering; the protocol
        // has no message for it.
        if (!ev.candidate || !ev.candidate.candidate) return;
        this.sig.send('candidate', { target, candidate: ev.candidate.toJSON() });
      };
      const onState = () => this.stateChanged(target, pc);
      pc.onconnectionstatechange = onState;
      pc.oniceconnectionstatechange = onState;
    }
    this.sub.ontrack = (ev) => this.onRemoteTrack(ev);
  }

  // connectionState is missing in older Firefox; map ICE state onto it.
  static pcState(pc) {
    if (pc.connectionState) return pc.connectionState;
    const ice = pc.iceConnectionState;
    return ice === 'completed' ? 'connected' : ice === 'checking' ? 'connecting' : ice;
  }

  stateChanged(target, pc) {
    if (this.closed) return;
    const state = Session.pcState(pc);
    this.log(`${target} connection ${state}`);
    if (state === 'connected') {
      this.badSince[target] = 0;
      // First connection time, for tests that time what follows it.
      if (!this.connectedAt[target]) this.connectedAt[target] = Date.now();
    }
    else if ((state === 'disconnected' || state === 'failed') && !this.badSince[target]) {
      this.badSince[target] = Date.now();
    }
    this.dispatchEvent(new CustomEvent('state', { detail: { target, state } }));
    if (state === 'failed') {
      this.dispatchEvent(new CustomEvent('broken', { detail: { target } }));
    } else if (state === 'disconnected') {
      setTimeout(() => {
        if (!this.closed && Session.pcState(pc) === 'disconnected') {
          this.dispatchEvent(new CustomEvent('broken', { detail: { target } }));
        }
      }, RESTART_GRACE_MS);
    }
  }

  // connected reports whether media can flow on the connections in use:
  // a subscriber that was never offered anything is not a failure.
  connected() {
    const pubUsed = this.pub.getTransceivers().length > 0;
    const subUsed = this.sub.remoteDescription !== null;
    return (!pubUsed || Session.pcState(this.pub) === 'connected') &&
      (!subUsed || Session.pcState(this.sub) === 'connected');
  }

  // ----- publisher -----

  // publish announces tracks, adds them to the publisher and negotiates.
  // items: [{track, source, stream}]
  async publish(items) {
    const tracks = items.map(({ track, source }) => ({
      trackId: track.id, kind: track.kind, source, muted: !track.enabled,
    }));
    await this.sig.request('publish', { tracks });
    for (const { track, source, stream } of items) {
      const tr = this.pub.addTransceiver(track, sendInit(track, source, stream));
      if (track.kind === 'audio') preferRED(tr, this.log);
      this.senders.set(track.id, tr.sender);
    }
    await this.negotiate();
  }

  async unpublish(trackId) {
    const sender = this.senders.get(trackId);
    this.senders.delete(trackId);
    this.sig.send('unpublish', { trackId });
    if (!sender) return;
    try {
      this.pub.removeTrack(sender);
    } catch (err) {
      this.log(`removeTrack: ${err}`);
    }
    await this.negotiate();
  }

  // replace swaps the media behind a published track (device change)
  // without renegotiation; the server keeps knowing it by `trackId`.
  async replace(trackId, track) {
    const sender = this.senders.get(trackId);
    if (sender) await sender.replaceTrack(track);
  }

  // setActiveLayers applies the server's dynacast request
  // ("active_layers", docs/protocol.md) through ActiveLayers: retried
  // until it holds, never during a renegotiation, the latest per track
  // winning. Tracks without rids are left alone.
  setActiveLayers(trackId, rids) {
    if (!Array.isArray(rids)) return Promise.resolve(false);
    return this.layers.set(trackId, rids);
  }

  negotiate({ iceRestart = false } = {}) {
    const run = async () => {
      if (this.closed) return;
      const offer = await this.pub.createOffer({ iceRestart });
      await this.pub.setLocalDescription(offer);
      const reply = await this.sig.request('offer', { sdp: this.pub.localDescription.sdp });
      if (this.closed) return;
      await this.pub.setRemoteDescription({ type: 'answer', sdp: reply.data.sdp });
      await this.flushCandidates('publisher');
    };
    const p = this.pubChain.then(run);
    this.pubChain = p.catch(() => {}); // keep the chain alive after a failure
    return p;
  }

  // ----- subscriber -----

  handleOffer(sdp) {
    const run = async () => {
      if (this.closed) return;
      await this.sub.setRemoteDescription({ type: 'offer', sdp });
      await this.flushCandidates('subscriber');
      const answer = await this.sub.createAnswer();
      await this.sub.setLocalDescription(answer);
      this.sig.send('answer', { sdp: this.sub.localDescription.sdp });
      this.dispatchEvent(new CustomEvent('state', { detail: { target: 'subscriber', state: Session.pcState(this.sub) } }));
    };
    const p = this.subChain.then(run);
    this.subChain = p.catch((err) => this.log(`subscriber negotiation: ${err}`));
    return p;
  }

  onRemoteTrack(ev) {
    const stream = ev.streams && ev.streams[0];
    // The server labels each stream "<participant sid>|<track sid>".
    const [participant, trackSid] = stream ? stream.id.split('|') : [];
    if (!participant || !trackSid) {
      this.log(`remote track without a Parley stream id: ${stream && stream.id}`);
      return;
    }
    const track = ev.track;
    const info = { participant, trackSid, track, receiver: ev.receiver };
    this.remote.set(track.id, info);
    const gone = () => {
      if (this.remote.get(track.id) !== info) return;
      this.remote.delete(track.id);
      this.dispatchEvent(new CustomEvent('trackremoved', { detail: info }));
    };
    // A removed m-line ends the track in Firefox and mutes it in Chromium;
    // the stream's removetrack fires in both.
    track.addEventListener('ended', gone);
    if (stream) stream.addEventListener('removetrack', gone);
    this.dispatchEvent(new CustomEvent('track', { detail: info }));
  }

  // ----- both -----

  async addRemoteCandidate(target, candidate) {
    const pc = target === 'publisher' ? this.pub : target === 'subscriber' ? this.sub : null;
    if (!pc || !candidate) return;
    if (!pc.remoteDescription) {
      this.pending[target].push(candidate);
      return;
    }
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      this.log(`addIceCandidate(${target}): ${err}`);
    }
  }

  async flushCandidates(target) {
    const pc = target === 'publisher' ? this.pub : this.sub;
    const list = this.pending[target];
    this.pending[target] = [];
    for (const c of list) {
      try {
        await pc.addIceCandidate(c);
      } catch (err) {
        this.log(`addIceCandidate(${target}): ${err}`);
      }
    }
  }

  // restartIce asks for fresh ICE credentials on both connections.
  async restartIce() {
    this.sig.send('ice_restart');
    if (this.pub.getTransceivers().length > 0) await this.negotiate({ iceRestart: true });
  }

  // remoteStats reads inbound RTP statistics per remote track. The
  // receivers are asked side by side: each getStats is a round trip to
  // the browser's network thread, which a busy machine makes slow.
  async remoteStats() {
    const infos = [...this.remote.values()];
    const reports = await Promise.all(infos.map((info) => info.receiver.getStats().catch(() => null)));
    const out = [];
    for (const [i, info] of infos.entries()) {
      let rtp = null;
      let codec = '';
      const report = reports[i]; // null: the receiver is gone
      if (report) {
        const codecs = new Map();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && !rtp) rtp = s;
          if (s.type === 'codec') codecs.set(s.id, s.mimeType || '');
        });
        if (rtp && rtp.codecId) codec = codecs.get(rtp.codecId) || '';
      }
      out.push({
        participant: info.participant,
        trackSid: info.trackSid,
        kind: info.track.kind,
        framesDecoded: rtp ? rtp.framesDecoded || 0 : 0,
        frameWidth: rtp ? rtp.frameWidth || 0 : 0,
        frameHeight: rtp ? rtp.frameHeight || 0 : 0,
        packetsReceived: rtp ? rtp.packetsReceived || 0 : 0,
        bytesReceived: rtp ? rtp.bytesReceived || 0 : 0,
        totalSamplesReceived: rtp ? rtp.totalSamplesReceived || 0 : 0,
        concealedSamples: rtp ? rtp.concealedSamples || 0 : 0,
        // Of those, the ones played while the talker was silent (DTX
        // comfort noise stretched over a lost packet): not heard.
        silentConcealedSamples: rtp ? rtp.silentConcealedSamples || 0 : 0,
        codec,
        freezeCount: rtp ? rtp.freezeCount || 0 : 0,
        totalFreezesDuration: rtp ? rtp.totalFreezesDuration || 0 : 0,
        jitterBufferDelay: rtp ? rtp.jitterBufferDelay || 0 : 0,
        jitterBufferEmittedCount: rtp ? rtp.jitterBufferEmittedCount || 0 : 0,
        // Packets that came on the track's RTX stream (RFC 4588), for the
        // lab's loss scenarios.
        retransmittedPacketsReceived: rtp ? rtp.retransmittedPacketsReceived || 0 : 0,
      });
    }
    return out;
  }

  // outboundStats reads the outbound RTP statistics of the published
  // tracks: one entry per encoding (a simulcast camera has one per rid).
  async outboundStats() {
    const out = [];
    for (const [trackId, sender] of this.senders) {
      let report;
      try {
        report = await sender.getStats();
      } catch {
        continue; // sender gone
      }
      const codecs = new Map();
      report.forEach((s) => { if (s.type === 'codec') codecs.set(s.id, s.mimeType || ''); });
      report.forEach((s) => {
        if (s.type !== 'outbound-rtp') return;
        out.push({
          trackId, kind: s.kind || '', codec: codecs.get(s.codecId) || '', rid: s.rid || '', active: s.active !== false,
          frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
          framesEncoded: s.framesEncoded || 0, qualityLimitationReason: s.qualityLimitationReason || '',
          packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0,
          keyFramesEncoded: s.keyFramesEncoded || 0, pliCount: s.pliCount || 0, ssrc: s.ssrc || 0,
        });
      });
    }
    return out;
  }

  // transportStats describes the candidate pair each connection uses:
  // {publisher: {local: {type, protocol, relayProtocol, address, port},
  // remote: {...}, state}, subscriber: ...}.
  async transportStats() {
    const out = {};
    for (const [target, pc] of [['publisher', this.pub], ['subscriber', this.sub]]) {
      try {
        out[target] = selectedPair(await pc.getStats());
      } catch {
        out[target] = null;
      }
    }
    return out;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.layers.close();
    this.pub.close();
    this.sub.close();
    this.remote.clear();
  }
}

// CAMERA_LAYERS are the camera's simulcast encodings, lowest first; the
// SFU forwards one of them to each subscriber (issue #10). Rids q, h, f
// are the names the SFU orders by. A camera smaller than the layers need
// gets fewer layers from the browser itself.
export const CAMERA_LAYERS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2000000 }),
]);

// SCREEN_LAYERS are a screen share's encodings, lowest first, both at the
// capture's full resolution so that text stays readable on either: q at
// 5 frames a second, f at the capture's own rate. The SFU takes a layer
// below the top for half its size, so a tile up to 640x360 (a strip
// thumbnail) gets q and a larger one f; a subscriber short of bandwidth
// gets q whatever its tile (the share is served before the cameras,
// issue #10). q is never paused (dynacast), f only while no one shows
// the share large.
export const SCREEN_LAYERS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 1, maxFramerate: 5, maxBitrate: 500000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2500000 }),
]);

// layeredScreen reports whether a browser (by its user agent) sends a
// screen share in SCREEN_LAYERS: Chromium-based ones. Firefox has been
// reported to send no media at all for a screen share with several
// encodings, and Safari to show others a blank share, so they keep one
// encoding (their camera layers are not affected).
export function layeredScreen(userAgent) {
  return /(Chrome|Chromium)\//.test(userAgent || ''); // HeadlessChrome/ too
}

// sendInit is the transceiver init of a published track: the camera in
// simulcast layers, a screen share in two layers where the browser is
// known to manage (layeredScreen), the microphone in one encoding.
export function sendInit(track, source, stream, userAgent = typeof navigator !== 'undefined' ? navigator.userAgent : '') {
  const init = { direction: 'sendonly', streams: [stream] };
  if (track.kind === 'video' && source === 'camera') {
    init.sendEncodings = CAMERA_LAYERS.map((e) => ({ ...e }));
  } else if (track.kind === 'video' && source === 'screen' && layeredScreen(userAgent)) {
    init.sendEncodings = SCREEN_LAYERS.map((e) => ({ ...e }));
  }
  return init;
}

// preferRED puts RED (redundant audio, RFC 2198) first among the audio
// codecs where the browser has it (Chromium): the browser sends the first
// codec of the answer, and the server's answer keeps the offer's order.
// The server unwraps RED for subscribers without it.
export function preferRED(transceiver, log) {
  const caps = typeof RTCRtpSender !== 'undefined' && RTCRtpSender.getCapabilities
    ? RTCRtpSender.getCapabilities('audio') : null;
  if (!caps || !transceiver.setCodecPreferences) return;
  const codecs = redFirst(caps.codecs);
  if (codecs === caps.codecs) return;
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (err) {
    if (log) log(`RED preference: ${err}`);
  }
}

// redFirst returns codecs with audio/red moved first, or the same array
// when there is no RED.
export function redFirst(codecs) {
  const isRed = (c) => (c.mimeType || '').toLowerCase() === 'audio/red';
  if (!codecs.some(isRed)) return codecs;
  return [...codecs.filter(isRed), ...codecs.filter((c) => !isRed(c))];
}

// relayConfig applies the forced-relay diagnostic: 'all' keeps every TURN
// URL and sets iceTransportPolicy "relay"; 'udp' and 'tcp' also keep only
// the TURN URLs of that transport (turns: counts as tcp). STUN URLs are
// dropped in relay mode since they cannot produce relay candidates.
export function relayConfig(iceServers, relay) {
  if (!relay) return { servers: iceServers, policy: 'all', problem: '' };
  const keep = (u) => {
    if (!/^turns?:/i.test(u)) return false;
    if (relay === 'all') return true;
    const m = /[?&]transport=(udp|tcp)/i.exec(u);
    const transport = /^turns:/i.test(u) ? 'tcp' : (m ? m[1].toLowerCase() : 'udp');
    return transport === relay;
  };
  const servers = [];
  for (const s of iceServers) {
    const urls = (Array.isArray(s.urls) ? s.urls : [s.urls]).filter(keep);
    if (urls.length) servers.push({ ...s, urls });
  }
  const problem = servers.length ? '' : `Relay-only mode (${relay}) but the server offered no matching TURN server: media cannot connect.`;
  return { servers, policy: 'relay', problem };
}

function candidateInfo(c) {
  if (!c) return null;
  return {
    type: c.candidateType, protocol: c.protocol, relayProtocol: c.relayProtocol || '',
    address: c.address || c.ip || '', port: c.port || 0,
  };
}

// selectedPair finds the candidate pair the transport selected.
function selectedPair(report) {
  let pairId = '';
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  let pair = pairId ? report.get(pairId) : null;
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return null;
  return {
    state: pair.state,
    bytesSent: pair.bytesSent || 0,
    bytesReceived: pair.bytesReceived || 0,
    availableOutgoingBitrate: pair.availableOutgoingBitrate || 0,
    local: candidateInfo(report.get(pair.localCandidateId)),
    remote: candidateInfo(report.get(pair.remoteCandidateId)),
  };
}
