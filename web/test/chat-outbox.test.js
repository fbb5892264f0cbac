import './env.js';
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { FakeSignaling, refusal } from './fake-signaling.js';
import { Channel } from '../static/channel.js';
import { ChatStore } from '../static/chat-store.js';
import { Outbox, FAIL_AFTER_MS } from '../static/chat-outbox.js';

let clock;
let realRandom;
beforeEach(() => {
  clock = new FakeClock().install();
  realRandom = Math.random;
  Math.random = () => 0.5; // retries after 500, 1000, 2000 ... ms
});
afterEach(() => {
  clock.uninstall();
  Math.random = realRandom;
});

// setup gives an Outbox on a channel whose chat_send replies come from
// reply(data, n) (n: 0-based attempt count); acks collects onAck calls.
async function setup(reply = (data) => ({ conversationId: data.conversationId, clientMsgId: data.clientMsgId, seq: 1 })) {
  let n = 0;
  const sig = new FakeSignaling({ answer: (type, data) => reply(data, n++) });
  await sig.open();
  const channel = new Channel();
  channel.use(sig);
  const store = new ChatStore('ada');
  await store.open();
  const acks = [];
  const outbox = new Outbox({
    channel, log: () => {}, onChange: () => {},
    onAck: (item, ack) => { acks.push(ack); outbox.settled(item.clientMsgId); },
  });
  await outbox.restore(store);
  return { outbox, sig, channel, store, acks };
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

test('messages go out one at a time in the order they were written', async () => {
  const gates = [deferred(), deferred()];
  const { outbox, sig, acks } = await setup((data, n) => gates[n].promise.then(() => ({ ...data, seq: n + 1 })));
  const a = await outbox.add('c1', 'first');
  const b = await outbox.add('c1', 'second');
  await clock.advance(0);
  assert.deepEqual(sig.requests.map((r) => r.data.text), ['first'], 'the second waits for the first ack');
  gates[0].resolve();
  await clock.advance(0);
  assert.deepEqual(sig.requests.map((r) => r.data.text), ['first', 'second']);
  gates[1].resolve();
  await clock.advance(0);
  assert.deepEqual(acks.map((x) => x.clientMsgId), [a.clientMsgId, b.clientMsgId]);
  assert.equal(outbox.items.length, 0);
});

test('a lost reply is retried with backoff under the same clientMsgId', async () => {
  const { outbox, sig, acks } = await setup((data, n) => {
    if (n < 2) throw new Error('connection closed');
    return { ...data, seq: 1 };
  });
  const item = await outbox.add('c1', 'hello');
  await clock.advance(0);
  assert.equal(sig.requests.length, 1);
  await clock.advance(499);
  assert.equal(sig.requests.length, 1, 'first retry after 500 ms');
  await clock.advance(1);
  assert.equal(sig.requests.length, 2);
  await clock.advance(1000);
  assert.equal(sig.requests.length, 3, 'second retry 1000 ms later');
  assert.deepEqual(new Set(sig.requests.map((r) => r.data.clientMsgId)), new Set([item.clientMsgId]));
  assert.equal(acks.length, 1);
});

test('a refusal a retry cannot fix fails the message at once and the queue moves on', async () => {
  const { outbox, sig, acks } = await setup((data, n) => {
    if (n === 0) throw refusal('too_large', 'message too large');
    return { ...data, seq: 1 };
  });
  const big = await outbox.add('c1', 'x'.repeat(10));
  await outbox.add('c1', 'small');
  await clock.advance(0);
  assert.equal(big.status, 'failed');
  assert.equal(big.error, 'message too large');
  assert.equal(sig.requests.length, 2);
  assert.equal(acks.length, 1);
  await clock.advance(60000);
  assert.equal(sig.requests.length, 2, 'a failed message is not resent by itself');
});

test('without a connection a message fails after FAIL_AFTER_MS, and retry sends it again', async () => {
  const { outbox, sig, channel, store } = await setup();
  sig.isOpen = false;
  const item = await outbox.add('c1', 'offline');
  assert.equal(FAIL_AFTER_MS, 30000, 'web/README.md promises 30 s');
  await clock.advance(FAIL_AFTER_MS);
  assert.equal(item.status, 'pending', 'not before the deadline');
  await clock.advance(1000);
  assert.equal(item.status, 'failed');
  assert.match(item.error, /no connection/);
  assert.equal((await store.outbox())[0].status, 'failed', 'the failure is stored for a reload');

  sig.isOpen = true;
  channel.use(sig);
  outbox.retry(item.clientMsgId);
  assert.equal(item.status, 'pending');
  await clock.advance(0);
  assert.equal(sig.requests.length, 1);
  assert.equal(sig.requests[0].data.clientMsgId, item.clientMsgId);
  assert.equal(outbox.items.length, 0);
  assert.deepEqual(await store.outbox(), []);
});

test('the deadline counts from the last progress: waiting behind others is not failing', async () => {
  // A is acked after 25 s; B, written at the same time as A, then gets
  // no reply for 15 s. B's 30 s start at A's ack, so B is retried, not failed.
  const gates = [deferred(), deferred()];
  const { outbox, acks } = await setup((data, n) => (n < 2 ? gates[n].promise.then(() => ({ ...data, seq: n + 1 })) : { ...data, seq: 2 }));
  await outbox.add('c1', 'A');
  const b = await outbox.add('c1', 'B');
  await clock.advance(25000);
  gates[0].resolve();
  await clock.advance(15000);
  gates[1].reject(new Error('chat_send: no reply'));
  await clock.advance(0);
  assert.equal(b.status, 'pending');
  await clock.advance(500);
  assert.equal(acks.length, 2);
});

test('restore resends stored messages in the order written, with their ids', async () => {
  const store = new ChatStore('ada');
  await store.open();
  await store.putOutbox({ clientMsgId: 'later', conversationId: 'c1', text: 'b', createdAt: 2, firstTry: 2, status: 'pending', error: '' });
  await store.putOutbox({ clientMsgId: 'earlier', conversationId: 'c1', text: 'a', createdAt: 1, firstTry: 1, status: 'pending', error: '' });
  const sig = new FakeSignaling({ answer: (type, data) => ({ ...data, seq: 1 }) });
  await sig.open();
  const channel = new Channel();
  const outbox = new Outbox({ channel, log: () => {}, onChange: () => {}, onAck: (item) => outbox.settled(item.clientMsgId) });
  await outbox.restore(store);
  assert.deepEqual(outbox.items.map((it) => it.status), ['pending', 'pending'], 'a reload gives them a fresh window');
  channel.use(sig);
  outbox.kick(); // what the chat does once it is online
  await clock.advance(0);
  assert.deepEqual(sig.requests.map((r) => r.data.clientMsgId), ['earlier', 'later']);
  assert.deepEqual(await store.outbox(), []);
});
