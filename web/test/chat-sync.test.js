import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settle } from './clock.js';
import { FakeSignaling } from './fake-signaling.js';
import { Channel } from '../static/channel.js';
import { Conversations } from '../static/chat-conversations.js';
import { addEvents } from '../static/chat-log.js';
import { ChatSync, PAGE } from '../static/chat-sync.js';

const ME = 'ada';
const ev = (conversationId, seq) => ({ conversationId, seq, kind: 'text', text: `m${seq}`, sender: { identity: 'bob', name: 'Bob' } });
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// A fake server: each conversation's events 1..n, answered as the protocol
// says (chat_range ascending after a seq, chat_history newest first).
function server(logs) {
  return (type, d) => {
    if (type === 'chat_range') {
      const after = logs[d.conversationId].filter((s) => s > d.afterSeq);
      return { messages: after.slice(0, d.limit).map((s) => ev(d.conversationId, s)), more: after.length > d.limit };
    }
    if (type === 'chat_history') {
      const before = logs[d.conversationId].filter((s) => !d.beforeSeq || s < d.beforeSeq).reverse();
      return { messages: before.slice(0, d.limit).map((s) => ev(d.conversationId, s)), more: before.length > d.limit };
    }
    if (type === 'chat_sync') {
      return {
        conversations: Object.keys(logs).map((id) => {
          const after = logs[id].filter((s) => s > (d.lastSeqs[id] || 0));
          return {
            conversation: { id, kind: 'direct', peer: 'bob', lastSeq: logs[id].length, unread: 2 },
            messages: d.lastSeqs[id] ? after.slice(0, d.limit).map((s) => ev(id, s)) : [],
            more: d.lastSeqs[id] ? after.length > d.limit : false,
          };
        }),
        gone: ['old'],
      };
    }
    throw new Error(`unexpected ${type}`);
  };
}

async function setup(answer) {
  const sig = new FakeSignaling({ answer });
  await sig.open();
  const channel = new Channel();
  channel.use(sig);
  const book = new Conversations({ log: () => {} });
  await book.open(ME, PAGE);
  const ingest = async (c, list) => {
    await book.putMessages(addEvents(c, list, ME));
    await book.save(c);
  };
  const sync = new ChatSync({ book, channel, ingest, changed: () => {}, log: () => {} });
  return { sync, book, sig, channel };
}

// held gives conversation id the events seqs, as if received earlier.
async function hold(book, id, seqs) {
  const c = book.conv(id);
  c.kind = 'direct';
  const list = seqs.map((s) => ev(id, s));
  addEvents(c, list, ME);
  await book.putMessages(list);
  return c;
}

const types = (sig) => sig.requests.map((r) => r.type);

test('a push right after held needs no refill', async () => {
  const { sync, book, sig } = await setup(server({ c1: range(1, 3) }));
  const c = await hold(book, 'c1', [1, 2]);
  await sync.onPush(ev('c1', 3));
  assert.equal(c.held, 3);
  assert.deepEqual(types(sig), []);
});

test('a push beyond held+1 refills the gap from held', async () => {
  const { sync, book, sig } = await setup(server({ c1: range(1, 5) }));
  const c = await hold(book, 'c1', [1, 2]);
  await sync.onPush(ev('c1', 5));
  assert.deepEqual(sig.requests.map((r) => [r.type, r.data.afterSeq]), [['chat_range', 2]]);
  assert.equal(c.held, 5);
  assert.deepEqual([...c.messages.keys()].sort((a, b) => a - b), [1, 2, 3, 4, 5]);
});

test('a long gap is refilled page by page until the server has no more', async () => {
  const { sync, book, sig } = await setup(server({ c1: range(1, 250) }));
  const c = await hold(book, 'c1', [1]);
  await sync.onPush(ev('c1', 250));
  assert.deepEqual(sig.requests.map((r) => r.data.afterSeq), [1, 101, 201]);
  assert.equal(c.held, 250);
});

test('a refill stops after 20 pages whatever the server says', async () => {
  const { sync, book, sig } = await setup((type, d) => ({ messages: [ev('c1', d.afterSeq + 1)], more: true }));
  const c = await hold(book, 'c1', [1]);
  await sync.onPush(ev('c1', 1000));
  assert.equal(sig.requests.length, 20);
  assert.equal(c.held, 21);
});

test('a push into a conversation with nothing held starts its log there', async () => {
  const { sync, book, sig } = await setup(server({ c1: range(1, 9) }));
  await sync.onPush(ev('c1', 9));
  const c = book.get('c1');
  assert.equal(c.held, 9);
  assert.equal(c.oldest, 9);
  assert.equal(c.more, true, 'older ones come with scroll-back');
  assert.deepEqual(types(sig), []);
});

test('sync names held per conversation, drops gone ones, takes the unread count and loads new conversations', async () => {
  const { sync, book, sig } = await setup(server({ c1: range(1, 4), c2: range(1, 40) }));
  await hold(book, 'c1', [1, 2, 4]);
  book.conv('old').kind = 'direct';
  await sync.sync(sig);
  assert.deepEqual(sig.requests[0].data.lastSeqs, { c1: 2 }, 'held, not the newest seq, and only for what is held');
  assert.equal(book.has('old'), false);
  const c1 = book.get('c1');
  assert.equal(c1.held, 4);
  assert.equal(c1.unread, 2, "the server's count");
  const c2 = book.get('c2');
  assert.deepEqual(sig.requests.slice(1).map((r) => [r.type, r.data.conversationId]), [['chat_history', 'c2']]);
  assert.equal(c2.oldest, 40 - PAGE + 1, 'the newest page of a conversation never held');
  assert.equal(c2.held, 40);
  assert.equal(sync.syncs, 1);
});

test('the reply to a sync on a replaced connection is dropped', async () => {
  const { sync, book, sig, channel } = await setup(server({ c1: range(1, 4) }));
  const pending = sync.sync(sig);
  const next = new FakeSignaling();
  await next.open();
  channel.use(next);
  await pending;
  assert.equal(book.has('c1'), false);
  assert.equal(sync.syncs, 0);
});

test('scroll-back reads a whole page from the store when it has one, else asks the server', async () => {
  const { sync, book, sig } = await setup(server({ c1: range(1, 100) }));
  const c = await hold(book, 'c1', range(41, 100));
  c.oldest = 71; // the page shown; 41..70 are in the store only
  for (const s of range(41, 70)) c.messages.delete(s);
  await sync.loadOlder('c1');
  assert.deepEqual(types(sig), [], 'from the store');
  assert.equal(c.oldest, 41);
  assert.equal(c.more, true);
  await sync.loadOlder('c1');
  assert.deepEqual(sig.requests.map((r) => [r.type, r.data.beforeSeq]), [['chat_history', 41]]);
  assert.equal(c.oldest, 11);
  await sync.loadOlder('c1');
  assert.equal(c.oldest, 1);
  assert.equal(c.more, false);
  await settle();
  assert.equal(c.loadingOlder, false);
});
