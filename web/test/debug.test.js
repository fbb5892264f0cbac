import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeSignaling } from './fake-signaling.js';
import { debugEnabled, ChatTap } from '../static/debug.js';

test('the debug switch is on only with ?debug or ?debug=1', () => {
  assert.equal(debugEnabled(''), false);
  assert.equal(debugEnabled('?name=ada'), false);
  assert.equal(debugEnabled('?debug'), true);
  assert.equal(debugEnabled('?name=ada&debug=1'), true);
  assert.equal(debugEnabled('?debug=0'), false);
});

test('ChatTap loses the next n pushed chat messages and passes everything else', () => {
  const link = new EventTarget();
  const tap = new ChatTap(link);
  const got = [];
  tap.addEventListener('message', (ev) => got.push(`${ev.detail.type}:${ev.detail.data.seq || ''}`));
  const push = (type, seq) => link.dispatchEvent(new CustomEvent('message', { detail: { type, data: { seq } } }));
  tap.dropPushes = 2;
  push('message', 1);
  push('typing');
  push('message', 2);
  push('message', 3);
  assert.deepEqual(got, ['typing:', 'message:3']);
  assert.equal(tap.dropPushes, 0);
});

test("ChatTap counts chat_range requests on the joined connection and leaves the rest to it", async () => {
  const link = new EventTarget();
  const tap = new ChatTap(link);
  let sig = null;
  tap.addEventListener('joined', (ev) => { sig = ev.detail.sig; });
  const real = new FakeSignaling();
  await real.open();
  link.dispatchEvent(new CustomEvent('joined', { detail: { sig: real, data: { room: 'r' } } }));
  await sig.request('chat_sync', {});
  await sig.request('chat_range', { afterSeq: 1 });
  await sig.request('chat_range', { afterSeq: 5 });
  assert.equal(tap.gapFills, 2);
  assert.equal(real.requests.length, 3);
  assert.equal(sig.isOpen, true);
  assert.equal(sig.send('typing', {}), true);
  assert.deepEqual(real.sent, [{ type: 'typing', data: {} }]);
});
