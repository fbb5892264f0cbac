// Session owns the two PeerConnections of one signaling connection:
// the publisher (client offers, server answers) and the subscriber (server
// offers, client answers). Negotiations on each connection run one at a
// time through a promise chain, so an offer never overlaps another.

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
    this.remote = new Map(); // MediaStreamTrack.id -> {participant, trackSid, track}
    this.badSince = { publisher: 0, subscriber: 0 };
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
    if (state === 'connected') this.badSince[target] = 0;
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
    for (const { track, stream } of items) {
      const tr = this.pub.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
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

  // remoteStats reads inbound RTP statistics per remote track.
  async remoteStats() {
    const out = [];
    for (const info of this.remote.values()) {
      let rtp = null;
      try {
        const report = await info.receiver.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && !rtp) rtp = s;
        });
      } catch { /* receiver gone */ }
      out.push({
        participant: info.participant,
        trackSid: info.trackSid,
        kind: info.track.kind,
        framesDecoded: rtp ? rtp.framesDecoded || 0 : 0,
        frameWidth: rtp ? rtp.frameWidth || 0 : 0,
        frameHeight: rtp ? rtp.frameHeight || 0 : 0,
        packetsReceived: rtp ? rtp.packetsReceived || 0 : 0,
        bytesReceived: rtp ? rtp.bytesReceived || 0 : 0,
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
    this.pub.close();
    this.sub.close();
    this.remote.clear();
  }
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
    local: candidateInfo(report.get(pair.localCandidateId)),
    remote: candidateInfo(report.get(pair.remoteCandidateId)),
  };
}
