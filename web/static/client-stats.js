// ClientStats sends the server a summary of this client's getStats()
// every 10 s while in a call ("client_stats", docs/protocol.md), which
// the admin API shows per participant: how much received audio had to be
// concealed, jitter, lost packets, decoded and dropped video frames, the
// round-trip time and the publisher's available bitrate. An operator
// reads it to tell a participant's bad network from a server problem.

// INTERVAL_MS is how often a summary is sent; the server drops any that
// comes sooner than 5 s after the last one it kept.
export const INTERVAL_MS = 10000;

// LIMITS are the server's bounds (proto.ClientStatsBody); values are
// clamped to them so an odd browser counter never gets the summary
// refused.
const MAX_COUNTER = 2 ** 53;
const MAX_TRACKS = 256;
const MAX_MS = 60000;
const MAX_BITRATE = 10e9;

function count(v) {
  const n = Math.round(Number(v) || 0);
  return Math.min(Math.max(n, 0), MAX_COUNTER);
}

function bounded(v, limit) {
  const n = Number(v) || 0;
  return Math.min(Math.max(n, 0), limit);
}

// selectedPair is the candidate pair a report's transport uses, or the
// nominated, succeeded one when the transport does not name it (Firefox).
function selectedPair(report) {
  let id = '';
  report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) id = s.selectedCandidatePairId; });
  let pair = null;
  report.forEach((s) => {
    if (s.type !== 'candidate-pair') return;
    if (id ? s.id === id : (!pair && s.nominated && s.state === 'succeeded')) pair = s;
  });
  return pair;
}

// summariseStats turns the subscriber's and the publisher's getStats()
// reports (anything with forEach over stats objects, as RTCStatsReport
// and Map have; either may be null) into a client_stats body: received
// audio and video summed over tracks, the largest audio jitter, the
// subscriber's round-trip time and the publisher's available bitrate.
export function summariseStats(subscriber, publisher) {
  const audio = { tracks: 0, totalSamplesReceived: 0, concealedSamples: 0, silentConcealedSamples: 0, packetsReceived: 0, packetsLost: 0, jitterMs: 0 };
  const video = { tracks: 0, framesDecoded: 0, framesDropped: 0, packetsLost: 0, freezeCount: 0 };
  let rttMs = 0;
  let availableOutgoingBitrate = 0;
  if (subscriber) {
    subscriber.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'audio') {
        audio.tracks++;
        audio.totalSamplesReceived += count(s.totalSamplesReceived);
        audio.concealedSamples += count(s.concealedSamples);
        audio.silentConcealedSamples += count(s.silentConcealedSamples); // DTX comfort noise
        audio.packetsReceived += count(s.packetsReceived);
        audio.packetsLost += count(s.packetsLost); // may be negative (duplicates): counted as 0
        audio.jitterMs = Math.max(audio.jitterMs, bounded(s.jitter, MAX_MS / 1000) * 1000);
      } else if (s.kind === 'video') {
        video.tracks++;
        video.framesDecoded += count(s.framesDecoded);
        video.framesDropped += count(s.framesDropped);
        video.packetsLost += count(s.packetsLost);
        video.freezeCount += count(s.freezeCount);
      }
    });
    const pair = selectedPair(subscriber);
    if (pair) rttMs = bounded(pair.currentRoundTripTime, MAX_MS / 1000) * 1000;
  }
  if (publisher) {
    const pair = selectedPair(publisher);
    if (pair) availableOutgoingBitrate = bounded(pair.availableOutgoingBitrate, MAX_BITRATE);
  }
  for (const o of [audio, video]) {
    for (const k of Object.keys(o)) o[k] = k === 'jitterMs' ? Math.round(o[k] * 10) / 10 : Math.min(o[k], MAX_COUNTER);
    o.tracks = Math.min(o.tracks, MAX_TRACKS);
  }
  audio.concealedSamples = Math.min(audio.concealedSamples, audio.totalSamplesReceived);
  audio.silentConcealedSamples = Math.min(audio.silentConcealedSamples, audio.concealedSamples);
  return { audio, video, rttMs: Math.round(rttMs * 10) / 10, availableOutgoingBitrate: Math.round(availableOutgoingBitrate) };
}

// ClientStats sends call's summary every interval while mounted. A tick
// is skipped while the previous one still waits for getStats, while
// there is no session (reconnecting) and while signaling is closed.
export class ClientStats {
  constructor(call, { intervalMs = INTERVAL_MS } = {}) {
    this.call = call;
    this.intervalMs = intervalMs;
    this.timer = 0;
    this.busy = false;
  }

  mount() {
    this.timer = setInterval(() => { this.tick(); }, this.intervalMs);
  }

  unmount() {
    clearInterval(this.timer);
    this.timer = 0;
  }

  async tick() {
    const { session, sig } = this.call;
    if (this.busy || !session || !sig || !sig.isOpen) return;
    this.busy = true;
    try {
      const [sub, pub] = await Promise.all([session.sub, session.pub].map((pc) => pc.getStats().catch(() => null)));
      // The call may have ended or reconnected meanwhile.
      if (this.timer && this.call.session === session && sig.isOpen) sig.send('client_stats', summariseStats(sub, pub));
    } finally {
      this.busy = false;
    }
  }
}
