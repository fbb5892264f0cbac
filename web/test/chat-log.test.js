import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  newConv, addEvents, gapBefore, isContiguousPage, addOlder, mergePeerMarks, mergeOwnMarks,
} from '../static/chat-log.js';

const ME = 'ada';
function ev(seq, { from = 'bob', kind = 'text', text = `m${seq}`, conv = 'c1', ...rest } = {}) {
  return { conversationId: conv, seq, kind, text, sender: { identity: from, name: from }, createdAt: seq * 1000, ...rest };
}
function conv(seqs = []) {
  const c = newConv('c1');
  addEvents(c, seqs.map((s) => ev(s)), ME);
  return c;
}

test('held advances over contiguous events only', () => {
  const c = conv([1, 2, 4]);
  assert.equal(c.held, 2, 'seq 3 is missing');
  assert.equal(c.lastSeq, 4);
  addEvents(c, [ev(3)], ME);
  assert.equal(c.held, 4, 'the hole closed');
});

test('events in any order give the same held', () => {
  const c = conv([3, 1, 2]);
  assert.equal(c.held, 3);
});

test('a log may start anywhere: contiguity counts from the oldest event loaded', () => {
  const c = conv([41, 42, 44]);
  assert.equal(c.oldest, 41);
  assert.equal(c.held, 42);
  assert.equal(c.more, true, 'older events exist');
  assert.equal(conv([1, 2]).more, false, 'nothing before seq 1');
});

test('gapBefore: only an event beyond held+1 in a held log is a gap', () => {
  const empty = newConv('c1');
  assert.equal(gapBefore(empty, 9), false, 'nothing held: no gap');
  const c = conv([1, 2, 3]);
  assert.equal(gapBefore(c, 4), false);
  assert.equal(gapBefore(c, 3), false, 'a repeat');
  assert.equal(gapBefore(c, 5), true);
});

test('addEvents returns only new events and ignores other conversations', () => {
  const c = conv([1, 2]);
  const fresh = addEvents(c, [ev(2), ev(3), ev(4, { conv: 'other' })], ME);
  assert.deepEqual(fresh.map((m) => m.seq), [3]);
  assert.equal(c.messages.has(4), false);
});

test('unread counts visible events from others after the sync and the read mark', () => {
  const c = newConv('c1');
  c.syncSeq = 3; // the server's unread count covered up to 3
  c.read = 1;
  addEvents(c, [
    ev(1), // read
    ev(2), ev(3), // counted by the sync
    ev(4), // counts
    ev(5, { from: ME }), // own
    ev(6, { kind: 'edit', targetSeq: 4 }), // folded, not shown
    ev(7, { kind: 'call_missed' }), // counts
  ], ME);
  assert.equal(c.unread, 2);
  addEvents(c, [ev(7, { kind: 'call_missed' })], ME);
  assert.equal(c.unread, 2, 'a repeat is not counted twice');
});

test('edits apply only from the sender; deletes blank the text and end edits', () => {
  const c = conv([1, 2]);
  addEvents(c, [ev(3, { kind: 'edit', targetSeq: 1, text: 'fixed' }), ev(4, { from: 'eve', kind: 'edit', targetSeq: 2, text: 'forged' })], ME);
  assert.equal(c.messages.get(1).text, 'fixed');
  assert.equal(c.messages.get(1).edited, true);
  assert.equal(c.messages.get(2).text, 'm2', "eve cannot edit bob's message");
  addEvents(c, [ev(5, { kind: 'delete', targetSeq: 1 }), ev(6, { kind: 'edit', targetSeq: 1, text: 'again' })], ME);
  assert.equal(c.messages.get(1).deleted, true);
  assert.equal(c.messages.get(1).text, '');
});

test('isContiguousPage accepts only a gapless page ending right before the oldest', () => {
  const c = conv([10, 11]);
  const page = (seqs) => seqs.map((s) => ev(s));
  assert.equal(isContiguousPage(c, page([7, 8, 9])), true);
  assert.equal(isContiguousPage(c, page([6, 8, 9])), false, 'hole inside');
  assert.equal(isContiguousPage(c, page([6, 7, 8])), false, 'ends before 9');
  assert.equal(isContiguousPage(c, []), false);
});

test('addOlder extends the log back without touching held or unread, and folds later deletes into it', () => {
  const c = conv([10, 11]);
  addEvents(c, [ev(12, { kind: 'delete', targetSeq: 9 })], ME);
  addOlder(c, [ev(8), ev(9)], true);
  assert.equal(c.oldest, 8);
  assert.equal(c.held, 12);
  assert.equal(c.unread, 2);
  assert.equal(c.more, true);
  assert.equal(c.messages.get(9).deleted, true, 'the delete held already applies to the older event');
  addOlder(c, [ev(1)], true);
  assert.equal(c.more, false, 'nothing before seq 1 whatever the source says');
});

test('marks only grow; read implies delivered; a newer own read mark recounts unread', () => {
  const c = conv([1, 2, 3]);
  mergePeerMarks(c, { identity: 'bob', read: 2 });
  mergePeerMarks(c, { identity: 'bob', delivered: 1 });
  assert.deepEqual(c.peerMarks.bob, { delivered: 2, read: 2 });
  assert.equal(c.unread, 3);
  mergeOwnMarks(c, { read: 2, delivered: 3 }, ME);
  assert.equal(c.unread, 1);
  assert.equal(c.delivered, 3);
  mergeOwnMarks(c, { read: 1, delivered: 1 }, ME);
  assert.equal(c.read, 2);
  assert.equal(c.delivered, 3);
});
