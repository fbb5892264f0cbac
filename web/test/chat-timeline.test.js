import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newConv, addEvents, mergePeerMarks } from '../static/chat-log.js';
import { title, statusOf, timeline, sortConversations } from '../static/chat-timeline.js';

const SELF = { identity: 'ada', name: 'Ada' };
const ev = (seq, from, kind = 'text', extra = {}) => ({ conversationId: 'c1', seq, kind, text: `m${seq}`, sender: { identity: from, name: from.toUpperCase() }, ...extra });

test('the mark on an own message follows the furthest receipt of any other member', () => {
  const c = newConv('c1');
  mergePeerMarks(c, { identity: 'bob', delivered: 5, read: 3 });
  mergePeerMarks(c, { identity: 'cy', delivered: 2, read: 2 });
  assert.equal(statusOf(c, { seq: 3 }), 'read');
  assert.equal(statusOf(c, { seq: 4 }), 'delivered');
  assert.equal(statusOf(c, { seq: 6 }), 'sent');
});

test('timeline: visible events in seq order with edits folded, then the outbox', () => {
  const c = newConv('c1');
  addEvents(c, [ev(3, 'bob'), ev(1, 'ada'), ev(2, 'bob', 'call_missed'), ev(4, 'ada', 'edit', { targetSeq: 1, text: 'fixed' })], 'ada');
  mergePeerMarks(c, { identity: 'bob', read: 1 });
  const out = timeline(c, [{ clientMsgId: 'x', text: 'pending one', status: 'pending', createdAt: 9 }], SELF);
  assert.deepEqual(out.map((m) => [m.key, m.kind, m.text, m.own, m.status]), [
    ['s1', 'text', 'fixed', true, 'read'],
    ['s2', 'call_missed', 'm2', false, ''],
    ['s3', 'text', 'm3', false, ''],
    ['cx', 'text', 'pending one', true, 'pending'],
  ]);
  assert.equal(out[0].edited, true);
});

test('titles: call rooms, rooms, direct chats by the peer name, groups', () => {
  const nameOf = (id) => ({ bob: 'Bob' }[id] || id);
  assert.equal(title({ kind: 'room', room: 'call-123' }, nameOf), 'Call chat');
  assert.equal(title({ kind: 'room', room: 'standup' }, nameOf), 'Room standup');
  assert.equal(title({ kind: 'direct', peer: 'bob' }, nameOf), 'Bob');
  assert.equal(title({ kind: 'group', title: '' }, nameOf), 'Group');
  assert.equal(title({ kind: 'group', title: 'Team' }, nameOf), 'Team');
  // An identity in a title made before its name was known shows as the name.
  assert.equal(title({ kind: 'group', title: 'Ada, bob, carol' }, nameOf), 'Ada, Bob, carol');
});

test("the list shows the call room's conversation first, then the most recent, and hides undescribed ones", () => {
  const convs = [
    { id: 'a', kind: 'direct', lastActivity: 5 },
    { id: 'room', kind: 'room', lastActivity: 1 },
    { id: 'b', kind: 'group', lastActivity: 9 },
    { id: 'new', kind: '', lastActivity: 99 },
  ];
  assert.deepEqual(sortConversations(convs, 'room').map((c) => c.id), ['room', 'b', 'a']);
});
