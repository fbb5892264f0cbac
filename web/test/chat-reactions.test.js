import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reactionsOf, reactionsKey } from '../static/chat-reactions.js';
import { newConv } from '../static/chat-log.js';

const ada = { identity: 'ada', name: 'Ada' };
const bob = { identity: 'bob', name: 'Bob' };

function conv(events) {
  const c = newConv('c1');
  for (const e of events) c.messages.set(e.seq, { conversationId: 'c1', ...e });
  return c;
}

test('reactionsOf folds react and unreact per emoji in seq order', () => {
  const c = conv([
    { seq: 1, kind: 'text', text: 'hi', sender: ada },
    { seq: 4, kind: 'unreact', text: '🎉', targetSeq: 1, sender: bob },
    { seq: 2, kind: 'react', text: '🎉', targetSeq: 1, sender: bob },
    { seq: 3, kind: 'react', text: '👍', targetSeq: 1, sender: bob },
    { seq: 5, kind: 'react', text: '👍', targetSeq: 1, sender: ada },
    { seq: 6, kind: 'react', text: '👍', targetSeq: 1, sender: ada }, // twice
  ]);
  const r = reactionsOf(c, 'ada');
  assert.deepEqual(r.get(1), [{ emoji: '👍', count: 2, mine: true, who: ['ada', 'bob'] }]);
  assert.equal(reactionsKey(r.get(1)), '👍2*');
  assert.equal(reactionsOf(c, 'bob').get(1)[0].mine, true);
  assert.equal(reactionsOf(c, 'cy').get(1)[0].mine, false);
});

test('reactionsOf ignores deleted targets, non-messages, later targets and other emoji', () => {
  const c = conv([
    { seq: 1, kind: 'text', text: 'gone', sender: ada, deleted: true },
    { seq: 2, kind: 'system', text: 'joined' },
    { seq: 3, kind: 'react', text: '👍', targetSeq: 1, sender: bob },
    { seq: 4, kind: 'react', text: '👍', targetSeq: 2, sender: bob },
    { seq: 5, kind: 'react', text: '👍', targetSeq: 9, sender: bob },
    { seq: 6, kind: 'text', text: 'hi', sender: ada },
    { seq: 7, kind: 'react', text: '💩', targetSeq: 6, sender: bob },
  ]);
  assert.equal(reactionsOf(c, 'ada').size, 0);
  assert.equal(reactionsKey(undefined), '');
});
