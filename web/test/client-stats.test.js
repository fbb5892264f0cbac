import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summariseStats, ClientStats } from '../static/client-stats.js';

// report builds a getStats()-like Map from stats objects.
function report(...stats) {
  return new Map(stats.map((s, i) => [s.id || `s${i}`, s]));
}

test('summariseStats sums received tracks and reads the selected pairs', () => {
  const sub = report(
    { type: 'inbound-rtp', kind: 'audio', totalSamplesReceived: 480000, concealedSamples: 4800, silentConcealedSamples: 1000, packetsReceived: 500, packetsLost: 4, jitter: 0.003 },
    { type: 'inbound-rtp', kind: 'audio', totalSamplesReceived: 96000, concealedSamples: 0, packetsReceived: 100, packetsLost: -2, jitter: 0.0125 },
    { type: 'inbound-rtp', kind: 'video', framesDecoded: 300, framesDropped: 2, packetsLost: 1, freezeCount: 1 },
    { type: 'outbound-rtp', kind: 'audio', packetsSent: 999 },
    { type: 'transport', selectedCandidatePairId: 'p2' },
    { id: 'p1', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.5 },
    { id: 'p2', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.0214 },
  );
  // Firefox names no selected pair on the transport: the nominated one.
  const pub = report(
    { id: 'q1', type: 'candidate-pair', nominated: false, state: 'succeeded', availableOutgoingBitrate: 1 },
    { id: 'q2', type: 'candidate-pair', nominated: true, state: 'succeeded', availableOutgoingBitrate: 1234567.8 },
  );
  assert.deepEqual(summariseStats(sub, pub), {
    audio: { tracks: 2, totalSamplesReceived: 576000, concealedSamples: 4800, silentConcealedSamples: 1000, packetsReceived: 600, packetsLost: 4, jitterMs: 12.5 },
    video: { tracks: 1, framesDecoded: 300, framesDropped: 2, packetsLost: 1, freezeCount: 1 },
    rttMs: 21.4,
    availableOutgoingBitrate: 1234568,
  });
});

test('summariseStats without reports or with odd values stays within the server limits', () => {
  assert.deepEqual(summariseStats(null, null), {
    audio: { tracks: 0, totalSamplesReceived: 0, concealedSamples: 0, silentConcealedSamples: 0, packetsReceived: 0, packetsLost: 0, jitterMs: 0 },
    video: { tracks: 0, framesDecoded: 0, framesDropped: 0, packetsLost: 0, freezeCount: 0 },
    rttMs: 0,
    availableOutgoingBitrate: 0,
  });
  const s = summariseStats(report(
    { type: 'inbound-rtp', kind: 'audio', totalSamplesReceived: 10, concealedSamples: 50, silentConcealedSamples: 70, jitter: 1e9 },
    { type: 'inbound-rtp', kind: 'video', framesDecoded: 'x', framesDropped: 2 ** 60 },
    { type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: -1 },
  ), report({ type: 'candidate-pair', nominated: true, state: 'succeeded', availableOutgoingBitrate: 1e12 }));
  assert.equal(s.audio.concealedSamples, 10, 'concealed never exceeds received');
  assert.equal(s.audio.silentConcealedSamples, 10, 'silent concealed never exceeds concealed');
  assert.equal(s.audio.jitterMs, 60000);
  assert.equal(s.video.framesDecoded, 0);
  assert.equal(s.video.framesDropped, 2 ** 53);
  assert.equal(s.rttMs, 0);
  assert.equal(s.availableOutgoingBitrate, 10e9);
});

test('ClientStats sends a summary per tick, only with a session and open signaling', async () => {
  const sent = [];
  const sig = { isOpen: true, send: (type, data) => { sent.push({ type, data }); return true; } };
  const pc = (stats) => ({ getStats: async () => report(...stats) });
  const session = {
    sub: pc([{ type: 'inbound-rtp', kind: 'audio', totalSamplesReceived: 48000, concealedSamples: 480 }]),
    pub: { getStats: async () => { throw new Error('closed'); } },
  };
  const call = { session, sig };
  const cs = new ClientStats(call, { intervalMs: 60000 });
  cs.mount();
  try {
    await cs.tick();
    assert.equal(sent.length, 1);
    assert.equal(sent[0].type, 'client_stats');
    assert.equal(sent[0].data.audio.concealedSamples, 480);
    assert.equal(sent[0].data.availableOutgoingBitrate, 0, 'a failing getStats counts as no report');

    sig.isOpen = false;
    await cs.tick();
    sig.isOpen = true;
    call.session = null; // reconnecting
    await cs.tick();
    assert.equal(sent.length, 1);

    // The session is replaced while getStats runs: nothing is sent.
    let release;
    call.session = { sub: { getStats: () => new Promise((r) => { release = r; }) }, pub: pc([]) };
    const pending = cs.tick();
    await cs.tick(); // skipped: the previous tick is still waiting
    call.session = session;
    release(report());
    await pending;
    assert.equal(sent.length, 1);
  } finally {
    cs.unmount();
  }
  assert.equal(cs.timer, 0);
});
