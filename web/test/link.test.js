import './env.js';
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { FakeSignaling, refusal } from './fake-signaling.js';
import { Link } from '../static/link.js';
import { PROTOCOL_VERSION } from '../static/signaling.js';

let clock;
let realRandom;
beforeEach(() => {
  clock = new FakeClock().install();
  realRandom = Math.random;
  Math.random = () => 0.5; // backoff without jitter: 500, 1000, 2000, ...
});
afterEach(() => {
  clock.uninstall();
  Math.random = realRandom;
});

// harness makes a Link whose connections come from connect(n), the n-th
// connection (0-based): a FakeSignaling, by default one that joins.
function harness(connect = () => new FakeSignaling({ answer: joinAnswer })) {
  const sigs = [];
  const events = [];
  const link = new Link({
    token: 't0', url: 'ws://test/ws', log: () => {},
    byeText: { removed: 'You were removed.', left: 'You left.' },
    signaling: () => {
      const s = connect(sigs.length);
      s.createdAt = Date.now();
      sigs.push(s);
      return s;
    },
  });
  for (const type of ['status', 'joined', 'message', 'token', 'notice', 'ended']) {
    link.addEventListener(type, (ev) => events.push({ type, detail: ev.detail }));
  }
  const of = (type) => events.filter((e) => e.type === type).map((e) => e.detail);
  return { link, sigs, events, of };
}

function joinAnswer(type) {
  if (type === 'join') return { participant: { sid: 'p1', identity: 'ada' }, pingTimeoutMs: 5000 };
  return {};
}

test('start joins with the token and the protocol version, then reports connected', async () => {
  const { link, sigs, of } = harness();
  await link.start();
  assert.equal(sigs.length, 1);
  assert.deepEqual(sigs[0].requests[0], { type: 'join', data: { token: 't0', protocol: PROTOCOL_VERSION }, timeoutMs: undefined });
  assert.equal(sigs[0].silenceMs, 5000, 'the heartbeat follows the server');
  assert.deepEqual(of('status').map((s) => s.status), ['connecting', 'connected']);
  assert.equal(of('joined').length, 1);
  assert.equal(of('joined')[0].sig, sigs[0]);
  assert.deepEqual(link.self, { sid: 'p1', identity: 'ada' });
  assert.equal(link.reconnects, 0);
});

test('a dropped connection rejoins after the backoff delay with the newest token', async () => {
  const { link, sigs, of } = harness();
  await link.start();
  sigs[0].push('token', { token: 't1' });
  assert.deepEqual(of('token'), ['t1']);
  sigs[0].close(1006);
  assert.equal(link.status, 'reconnecting');
  await clock.advance(499);
  assert.equal(sigs.length, 1, 'no rejoin before the 500 ms backoff');
  await clock.advance(1);
  assert.equal(sigs.length, 2);
  assert.equal(sigs[1].requests[0].data.token, 't1');
  assert.equal(link.status, 'connected');
  assert.equal(link.reconnects, 1);
  assert.equal(of('joined').length, 2);
  assert.equal(of('joined')[1].sig, sigs[1]);
});

test('failed attempts back off exponentially and a join resets the backoff', async () => {
  // Connections 0..3 never open; 4 joins; after it drops, 5 joins.
  const { link, sigs } = harness((n) => (n >= 1 && n <= 3
    ? new FakeSignaling({ openError: new Error('refused') })
    : new FakeSignaling({ answer: joinAnswer })));
  await link.start();
  const t0 = Date.now();
  sigs[0].close(1006);
  await clock.advance(60000);
  assert.equal(sigs.length, 5);
  assert.deepEqual(sigs.slice(1).map((s) => s.createdAt - t0), [500, 1500, 3500, 7500]);
  assert.equal(link.status, 'connected');
  const t1 = Date.now();
  sigs[4].close(1006);
  await clock.advance(500);
  assert.equal(sigs.length, 6);
  assert.equal(sigs[5].createdAt - t1, 500, 'the first retry after a join waits 500 ms again');
});

test('a fatal error before the close fails the link and stops retrying', async () => {
  const { link, sigs, of } = harness();
  await link.start();
  sigs[0].push('error', { code: 'unauthorized', message: 'token expired' });
  sigs[0].close(1008);
  assert.equal(link.status, 'failed');
  assert.deepEqual(of('ended'), [{ message: 'unauthorized: token expired', status: 'failed' }]);
  await clock.advance(60000);
  assert.equal(sigs.length, 1);
  assert.equal(clock.pending, 0, 'no timer left behind');
});

test('a join refused for good fails at once; a refusal a retry can fix rejoins', async () => {
  const refused = harness(() => new FakeSignaling({ answer: () => { throw refusal('unauthorized'); } }));
  await refused.link.start();
  assert.equal(refused.link.status, 'failed');
  assert.equal(refused.of('ended').length, 1);

  const full = harness((n) => new FakeSignaling({
    answer: (type) => { if (n === 0) throw refusal('room_full'); return joinAnswer(type); },
  }));
  await full.link.start();
  assert.equal(full.link.status, 'reconnecting');
  await clock.advance(500);
  assert.equal(full.link.status, 'connected');
});

test('a bye that ends the link ends it; other byes are followed by a rejoin', async () => {
  const { link, sigs, of } = harness();
  await link.start();
  sigs[0].push('bye', { reason: 'shutdown' });
  assert.equal(link.ended, false);
  sigs[0].close(1001);
  await clock.advance(500);
  assert.equal(link.status, 'connected');
  sigs[1].push('bye', { reason: 'removed' });
  assert.deepEqual(of('ended'), [{ message: 'You were removed.', status: 'closed' }]);
  assert.equal(sigs[1].closed, true);
  await clock.advance(60000);
  assert.equal(sigs.length, 2);
});

test('end while a rejoin is pending cancels it', async () => {
  const { link, sigs } = harness();
  await link.start();
  sigs[0].close(1006);
  link.end('bye');
  assert.equal(link.status, 'closed');
  assert.equal(clock.pending, 0, 'the rejoin timer is cleared');
  await clock.advance(60000);
  assert.equal(sigs.length, 1);
});

test('events of a replaced connection are ignored', async () => {
  const { link, sigs, of } = harness();
  await link.start();
  const old = sigs[0];
  old.close(1006);
  await clock.advance(500);
  old.dispatchEvent(new CustomEvent('close', { detail: { code: 1006 } }));
  old.push('chat', { x: 1 });
  assert.equal(link.status, 'connected');
  assert.equal(of('message').length, 0);
  await clock.advance(60000);
  assert.equal(sigs.length, 2);
});

test('leave tells the server, then ends', async () => {
  const { link, sigs, of } = harness();
  await link.start();
  const sig = sigs[0];
  link.leave();
  assert.deepEqual(sig.sent, [{ type: 'leave', data: undefined }]);
  assert.deepEqual(of('ended'), [{ message: 'You left.', status: 'closed' }]);
  link.leave();
  assert.equal(of('ended').length, 1, 'ended only once');
});

test('server messages go out as message, except those the subclass consumes', async () => {
  class Sub extends Link {
    consume(msg) { return msg.type === 'offer'; }
  }
  const sig = new FakeSignaling({ answer: joinAnswer });
  const link = new Sub({ token: 't', log: () => {}, signaling: () => sig });
  const got = [];
  link.addEventListener('message', (ev) => got.push(ev.detail.type));
  const notices = [];
  link.addEventListener('notice', (ev) => notices.push(ev.detail));
  await link.start();
  sig.push('offer', {});
  sig.push('chat_message', {});
  sig.push('error', { code: 'rate_limited', message: 'slow down' });
  sig.push('error', { code: 'bad_request', message: 'answered' }, '7');
  assert.deepEqual(got, ['chat_message', 'error', 'error']);
  assert.deepEqual(notices, ['slow down'], 'only an error that answers no request is shown');
});

test('with renew, a refused token is replaced once and the link rejoins; a second refusal fails', async () => {
  let renewals = 0;
  const sigs = [];
  const link = new Link({
    token: 'old', url: 'ws://test/ws', log: () => {},
    renew: async () => { renewals++; return `fresh${renewals}`; },
    signaling: () => {
      const n = sigs.length;
      // 0 joins; 1 (after the restart) refuses the old token; 2 joins
      // with the fresh one; 3 refuses again, 4 refuses the renewed one.
      const s = new FakeSignaling({
        answer: (type) => { if (n === 1 || n >= 3) throw refusal('unauthorized', 'invalid token'); return joinAnswer(type); },
      });
      sigs.push(s);
      return s;
    },
  });
  const retries = [];
  link.addEventListener('retry', (ev) => retries.push(ev.detail.attempt));
  await link.start();
  sigs[0].close(1006);
  await clock.advance(500);
  assert.equal(sigs.length, 2);
  await clock.advance(1000);
  assert.equal(renewals, 1);
  assert.equal(sigs.length, 3);
  assert.equal(sigs[2].requests[0].data.token, 'fresh1');
  assert.equal(link.status, 'connected');
  assert.deepEqual(retries, [1, 2], 'the refused join counts as an attempt');
  sigs[2].close(1006);
  await clock.advance(500);
  await clock.advance(1000);
  await clock.advance(2000);
  assert.equal(renewals, 2, 'renewed again after a successful join');
  assert.equal(link.status, 'failed', 'a refused fresh token ends the link');
});
