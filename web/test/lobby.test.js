import './env.js';
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { FakeSignaling, refusal } from './fake-signaling.js';
import { Link } from '../static/link.js';

// A Link held in the room's lobby (docs/protocol.md, "Lobby"): the join
// is answered with `lobby`, and `joined` comes later, or the wait ends.

let clock;
beforeEach(() => { clock = new FakeClock().install(); });
afterEach(() => clock.uninstall());

const BYE = { removed: 'Removed.', left: 'Left.', denied: 'Not let in.', expired: 'Expired.', ended: 'Ended.' };

function harness(connect) {
  const sigs = [];
  const events = [];
  const link = new Link({
    token: 't0', url: 'ws://test/ws', log: () => {}, byeText: BYE,
    signaling: () => {
      const s = connect(sigs.length);
      sigs.push(s);
      return s;
    },
  });
  for (const type of ['status', 'joined', 'lobby', 'ended']) {
    link.addEventListener(type, (ev) => events.push({ type, detail: ev.detail }));
  }
  const of = (type) => events.filter((e) => e.type === type).map((e) => e.detail);
  return { link, sigs, of };
}

const lobbyReply = () => new FakeSignaling({
  replyType: (type) => (type === 'join' ? 'lobby' : type),
  answer: (type) => (type === 'join' ? { status: 'waiting', lobbyId: 'LB_1', expiresInMs: 300000 } : {}),
});

const tick = () => new Promise((r) => setImmediate(r));

test('a join held in the lobby waits, then goes on when admitted', async () => {
  const { link, sigs, of } = harness(lobbyReply);
  const started = link.start();
  await tick();
  assert.equal(link.status, 'waiting');
  assert.deepEqual(of('lobby')[0], { status: 'waiting', lobbyId: 'LB_1', expiresInMs: 300000 });
  assert.equal(of('joined').length, 0);
  sigs[0].push('joined', { participant: { sid: 'p1', identity: 'bob' }, pingTimeoutMs: 5000 }, '1');
  await started;
  assert.equal(link.status, 'connected');
  assert.equal(of('joined').length, 1);
  assert.deepEqual(link.self, { sid: 'p1', identity: 'bob' });
});

for (const [status, reason, text] of [['denied', 'denied', 'Not let in.'], ['expired', 'timeout', 'Expired.'], ['ended', 'ended', 'Ended.']]) {
  test(`a lobby wait that ends ${status} ends the link without a rejoin`, async () => {
    const { link, sigs, of } = harness(lobbyReply);
    link.start();
    await tick();
    sigs[0].push('lobby', { status });
    sigs[0].push('bye', { reason });
    sigs[0].close(1000);
    await tick();
    assert.equal(link.status, 'closed');
    assert.deepEqual(of('ended'), [{ message: text, status: 'closed' }]);
    await clock.advance(60000);
    await tick();
    assert.equal(sigs.length, 1, 'no rejoin');
  });
}

test('a lost lobby connection knocks again', async () => {
  const { link, sigs } = harness(lobbyReply);
  link.start();
  await tick();
  sigs[0].close(1006);
  await tick();
  assert.equal(link.status, 'reconnecting');
  await clock.advance(1000);
  await tick();
  assert.equal(sigs.length, 2);
  assert.equal(link.status, 'waiting');
});

test('a banned identity fails without a rejoin', async () => {
  const { link, sigs, of } = harness(() => new FakeSignaling({
    answer: (type) => { if (type === 'join') throw refusal('banned', 'a moderator banned this identity from the meeting'); return {}; },
  }));
  await link.start();
  assert.equal(link.status, 'failed');
  assert.equal(of('ended').length, 1);
  assert.match(of('ended')[0].message, /^banned:/);
  await clock.advance(60000);
  await tick();
  assert.equal(sigs.length, 1);
});
