import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveLayers, applyRids } from '../static/active-layers.js';

// fakeSender behaves as Chrome's RTCRtpSender does in the parts
// ActiveLayers uses: setParameters takes only the object of the latest
// getParameters (its transactionId), once; failures[i] makes the i-th
// setParameters call fail with that error.
function fakeSender(rids, failures = []) {
  let tx = 0;
  let last = null;
  const s = {
    encodings: rids.map((rid) => ({ rid, active: true })),
    sets: 0,
    getParameters() {
      tx++;
      last = String(tx);
      return { transactionId: last, encodings: s.encodings.map((e) => ({ ...e })) };
    },
    async setParameters(p) {
      const n = s.sets++;
      if (p.transactionId !== last) throw new Error('InvalidStateError: getParameters() has never been called');
      last = null;
      if (failures[n]) throw failures[n];
      s.encodings = p.encodings.map((e) => ({ ...e }));
    },
    active() {
      return s.encodings.filter((e) => e.active).map((e) => e.rid);
    },
  };
  return s;
}

const noSleep = (slept) => async (ms) => {
  slept.push(ms);
};

test('applyRids pauses the encodings not named and leaves rid-less ones alone', () => {
  const p = { encodings: [{ rid: 'q', active: true }, { rid: 'h', active: true }, { rid: 'f', active: false }] };
  assert.equal(applyRids(p, ['q', 'f']), true);
  assert.deepEqual(p.encodings.map((e) => e.active), [true, false, true]);
  assert.equal(applyRids(p, ['q', 'f']), false, 'nothing left to change');
  const single = { encodings: [{ active: true }] };
  assert.equal(applyRids(single, []), false);
  assert.equal(single.encodings[0].active, true);
});

test('a request pauses the layers nobody needs and resumes them later', async () => {
  const s = fakeSender(['q', 'h', 'f']);
  const al = new ActiveLayers({ sender: () => s, sleep: noSleep([]) });
  assert.equal(await al.set('cam', ['q']), true);
  assert.deepEqual(s.active(), ['q']);
  assert.equal(await al.set('cam', ['q', 'h', 'f']), true);
  assert.deepEqual(s.active(), ['q', 'h', 'f']);
});

test('a refused request is tried again with a growing delay until it holds', async () => {
  const refused = new Error('InvalidStateError: getParameters() has never been called on this sender');
  const s = fakeSender(['q', 'h', 'f'], [refused, refused, refused]);
  const slept = [];
  const logged = [];
  const al = new ActiveLayers({ sender: () => s, sleep: noSleep(slept), log: (m) => logged.push(m) });
  assert.equal(await al.set('cam', ['q']), true);
  assert.deepEqual(s.active(), ['q']);
  assert.deepEqual(slept, [250, 500, 1000]);
  assert.equal(logged.length, 3);
  assert.match(logged[0], /active layers of cam: .*InvalidStateError.*trying again in 250 ms/);
});

test('retries stop after eight attempts, with the delay capped at 4 s', async () => {
  const always = Array.from({ length: 20 }, () => new Error('refused'));
  const s = fakeSender(['q', 'h', 'f'], always);
  const slept = [];
  const logged = [];
  const al = new ActiveLayers({ sender: () => s, sleep: noSleep(slept), log: (m) => logged.push(m) });
  assert.equal(await al.set('cam', ['q']), false);
  assert.equal(s.sets, 8);
  assert.deepEqual(slept, [250, 500, 1000, 2000, 4000, 4000, 4000]);
  assert.match(logged.at(-1), /giving up after 8 attempts/);
  assert.deepEqual(s.active(), ['q', 'h', 'f'], 'a refused request changed nothing');
});

test('the latest request wins over one still being applied', async () => {
  const s = fakeSender(['q', 'h', 'f']);
  let release;
  const gate = new Promise((r) => (release = r));
  const set = s.setParameters;
  let inFlight = false;
  s.setParameters = async (p) => {
    inFlight = true;
    await gate; // the first request is in flight when the second comes
    s.setParameters = set;
    return set(p);
  };
  const al = new ActiveLayers({ sender: () => s, sleep: noSleep([]) });
  const first = al.set('cam', ['q']);
  for (let i = 0; i < 100 && !inFlight; i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(inFlight, 'the first request never reached setParameters');
  const second = al.set('cam', ['q', 'h']);
  release();
  assert.equal(await first, true);
  assert.equal(await second, true);
  assert.deepEqual(s.active(), ['q', 'h']);
  assert.equal(s.sets, 2, 'the first request, then the second');
});

test('nothing is set while the publisher connection renegotiates', async () => {
  const s = fakeSender(['q', 'h', 'f']);
  let done;
  const negotiating = new Promise((r) => (done = r));
  const al = new ActiveLayers({ sender: () => s, idle: () => negotiating, sleep: noSleep([]) });
  const p = al.set('cam', ['f']);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(s.sets, 0, 'setParameters during the renegotiation');
  done();
  assert.equal(await p, true);
  assert.deepEqual(s.active(), ['f']);
});

test('a track no longer published, or a closed session, is left alone', async () => {
  const al = new ActiveLayers({ sender: () => undefined, sleep: noSleep([]) });
  assert.equal(await al.set('gone', ['q']), false);
  const s = fakeSender(['q', 'h', 'f']);
  const closed = new ActiveLayers({ sender: () => s, sleep: noSleep([]) });
  closed.close();
  assert.equal(await closed.set('cam', ['q']), false);
  assert.equal(s.sets, 0);
});
