import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leftAloneText, CallEnd } from '../static/call-end.js';

const ada = { identity: 'ada', name: 'Ada' };
const bob = { identity: 'bob', name: 'Bob' };

test('leftAloneText ends a call room when the last other person left', () => {
  assert.equal(leftAloneText('call-1', [ada], []), 'Ada left the call.');
  assert.equal(leftAloneText('call-1', [{ identity: 'ada' }], []), 'ada left the call.');
  assert.equal(leftAloneText('call-1', [ada, bob], []), 'Everyone else left the call.');
});

test('leftAloneText keeps the call while someone is there, and meetings always', () => {
  assert.equal(leftAloneText('call-1', [ada, bob], [bob]), '');
  assert.equal(leftAloneText('call-1', [], []), ''); // nobody came yet
  assert.equal(leftAloneText('call-1', [], [ada]), '');
  assert.equal(leftAloneText('standup', [ada], []), '');
});

test('CallEnd leaves the call when the roster empties', () => {
  const call = new EventTarget();
  call.room = 'call-9';
  call.participants = new Map();
  const left = [];
  call.leave = (text) => left.push(text);
  const end = new CallEnd(call);
  end.mount();
  call.dispatchEvent(new Event('roster')); // joined alone: the callee comes later
  call.participants.set('PA_a', ada);
  call.dispatchEvent(new Event('roster'));
  assert.deepEqual(left, []);
  call.participants.delete('PA_a');
  call.dispatchEvent(new Event('roster'));
  assert.deepEqual(left, ['Ada left the call.']);
  end.unmount();
});
