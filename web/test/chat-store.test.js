import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatStore } from '../static/chat-store.js';

// Node has no IndexedDB, so these run the in-memory fallback that private
// windows of some browsers get; its paging must match the IndexedDB one.
async function store() {
  const s = new ChatStore('ada');
  await s.open();
  return s;
}
const ev = (conversationId, seq) => ({ conversationId, seq, kind: 'text', text: `m${seq}` });

test('without IndexedDB the store keeps everything in memory', async () => {
  const s = await store();
  assert.equal(s.persistent, false);
});

test('messages pages back from the newest, ascending, one conversation only', async () => {
  const s = await store();
  await s.putMessages([5, 1, 3, 2, 4].map((n) => ev('c1', n)));
  await s.putMessages([ev('c2', 6), ev('c2', 2)]);
  const seqs = (list) => list.map((m) => m.seq);
  assert.deepEqual(seqs(await s.messages('c1', 0, 2)), [4, 5], 'newest page');
  assert.deepEqual(seqs(await s.messages('c1', 4, 2)), [2, 3], 'the page before seq 4');
  assert.deepEqual(seqs(await s.messages('c1', 2, 5)), [1], 'a short last page');
  assert.deepEqual(seqs(await s.messages('c1', 1, 5)), [], 'nothing before seq 1');
  assert.deepEqual(seqs(await s.messages('c2', 0, 10)), [2, 6]);
});

test('putMessages replaces an event with the same seq', async () => {
  const s = await store();
  await s.putMessages([ev('c1', 1)]);
  await s.putMessages([{ ...ev('c1', 1), text: 'edited' }]);
  const list = await s.messages('c1', 0, 10);
  assert.equal(list.length, 1);
  assert.equal(list[0].text, 'edited');
});

test('deleteConversation forgets the conversation and its events', async () => {
  const s = await store();
  await s.putConversation({ id: 'c1', held: 2 });
  await s.putConversation({ id: 'c2', held: 1 });
  await s.putMessages([ev('c1', 1), ev('c1', 2), ev('c2', 1)]);
  await s.deleteConversation('c1');
  assert.deepEqual((await s.conversations()).map((c) => c.id), ['c2']);
  assert.deepEqual(await s.messages('c1', 0, 10), []);
  assert.equal((await s.messages('c2', 0, 10)).length, 1);
});

test('the outbox keeps items by clientMsgId until deleted', async () => {
  const s = await store();
  await s.putOutbox({ clientMsgId: 'a', text: 'one', status: 'pending' });
  await s.putOutbox({ clientMsgId: 'b', text: 'two', status: 'pending' });
  await s.putOutbox({ clientMsgId: 'a', text: 'one', status: 'failed' });
  await s.deleteOutbox('b');
  assert.deepEqual(await s.outbox(), [{ clientMsgId: 'a', text: 'one', status: 'failed' }]);
});
