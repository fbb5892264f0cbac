import './env.js';
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { FakeSignaling, refusal } from './fake-signaling.js';
import { Channel } from '../static/channel.js';
import { Receipts } from '../static/chat-receipts.js';

let clock;
beforeEach(() => { clock = new FakeClock().install(); });
afterEach(() => clock.uninstall());

// setup gives Receipts on an open channel; known: conversationId -> the
// marks the server has; answer(data) is the reply (or throws).
async function setup({ known = {}, answer = (data) => data } = {}) {
  const sig = new FakeSignaling({ answer: (type, data) => answer(data) });
  await sig.open();
  const channel = new Channel();
  channel.use(sig);
  const replies = [];
  const receipts = new Receipts({ channel, log: () => {}, marks: (id) => known[id] || { delivered: 0, read: 0 }, onMarks: (d) => replies.push(d) });
  return { receipts, sig, channel, replies };
}

const sentTo = (sig) => sig.requests.map((r) => r.data);

test('marks queued within 250 ms go out as one receipt per conversation, the highest winning', async () => {
  const { receipts, sig, replies } = await setup();
  receipts.queue('c1', { delivered: 3 });
  receipts.queue('c1', { delivered: 2, read: 1 });
  receipts.queue('c1', { read: 4 });
  await clock.advance(249);
  assert.equal(sig.requests.length, 0);
  await clock.advance(1);
  assert.deepEqual(sentTo(sig), [{ conversationId: 'c1', delivered: 4, read: 4 }], 'read implies delivered');
  assert.equal(sig.requests[0].type, 'chat_receipt');
  assert.deepEqual(replies, [{ conversationId: 'c1', delivered: 4, read: 4 }]);
});

test('at most 3 receipts per 250 ms, so a big sync does not drain the write bucket', async () => {
  const { receipts, sig } = await setup();
  for (let i = 1; i <= 7; i++) receipts.queue(`c${i}`, { delivered: i });
  await clock.advance(250);
  assert.equal(sig.requests.length, 3);
  await clock.advance(250);
  assert.equal(sig.requests.length, 6);
  await clock.advance(250);
  assert.deepEqual(sentTo(sig).map((d) => d.conversationId), ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']);
  await clock.advance(5000);
  assert.equal(sig.requests.length, 7);
  assert.equal(clock.pending, 0, 'no timer runs with nothing queued');
});

test('marks the server already has are not sent again', async () => {
  const { receipts, sig } = await setup({ known: { c1: { delivered: 5, read: 2 } } });
  receipts.queue('c1', { delivered: 5 });
  await clock.advance(250);
  assert.equal(sig.requests.length, 0);
  receipts.queue('c1', { delivered: 6 });
  await clock.advance(250);
  assert.deepEqual(sentTo(sig), [{ conversationId: 'c1', delivered: 6 }]);
});

test('a rate-limited or lost receipt is merged into a later one; a refused one is dropped', async () => {
  let n = 0;
  const { receipts, sig } = await setup({
    answer: (data) => {
      n++;
      if (n === 1) throw refusal('rate_limited');
      if (n === 2) throw new Error('connection closed');
      if (n === 3) throw refusal('forbidden');
      return data;
    },
  });
  receipts.queue('c1', { delivered: 1 });
  await clock.advance(250); // rate_limited: queued again
  receipts.queue('c1', { read: 2 });
  await clock.advance(250); // lost: queued again
  await clock.advance(250); // forbidden: dropped
  await clock.advance(5000);
  assert.deepEqual(sentTo(sig), [
    { conversationId: 'c1', delivered: 1 },
    { conversationId: 'c1', delivered: 2, read: 2 },
    { conversationId: 'c1', delivered: 2, read: 2 },
  ]);
});

test('offline, marks wait for the next join', async () => {
  const { receipts, sig, channel } = await setup();
  sig.isOpen = false;
  receipts.queue('c1', { delivered: 1 });
  await clock.advance(5000);
  assert.equal(sig.requests.length, 0);
  const next = new FakeSignaling({ answer: (type, data) => data });
  await next.open();
  channel.use(next);
  receipts.schedule(); // what the chat does once online again
  await clock.advance(250);
  assert.deepEqual(sentTo(next), [{ conversationId: 'c1', delivered: 1 }]);
});

test('flushNow sends everything queued at once, without waiting for replies', async () => {
  const { receipts, sig } = await setup();
  for (let i = 1; i <= 5; i++) receipts.queue(`c${i}`, { read: i });
  receipts.flushNow();
  assert.equal(sig.sent.length, 5);
  assert.deepEqual(sig.sent[4], { type: 'chat_receipt', data: { conversationId: 'c5', delivered: 5, read: 5 } });
  await clock.advance(1000);
  assert.equal(sig.requests.length, 0, 'nothing left to send');
});
