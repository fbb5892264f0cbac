import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';

// A page without layout: no ResizeObserver or IntersectionObserver, a
// document whose visibility the test sets.
const doc = new EventTarget();
doc.visibilityState = 'visible';
globalThis.document = doc;
globalThis.window = { devicePixelRatio: 2 };
const { ViewReporter } = await import('../static/views.js');

function fakeSig() {
  return { sent: [], send(type, data) { this.sent.push({ type, ...data }); return true; } };
}

function tile(width, height) {
  return { size: { width, height }, getBoundingClientRect() { return this.size; } };
}

test('reports each tile once per change, in device pixels, hidden with the page', () => {
  const sig = fakeSig();
  const r = new ViewReporter(() => sig);
  const a = tile(160, 90);
  r.watch(a, 'TR_a');
  r.flush();
  assert.deepEqual(sig.sent, [{ type: 'video_view', trackSid: 'TR_a', width: 320, height: 180, visible: true }]);
  r.flush();
  assert.equal(sig.sent.length, 1, 'unchanged: not sent again');
  a.size = { width: 0, height: 0 }; // display: none
  r.flush();
  assert.equal(sig.sent.at(-1).visible, false);
  a.size = { width: 640, height: 360 };
  doc.visibilityState = 'hidden';
  doc.dispatchEvent(new Event('visibilitychange'));
  assert.deepEqual(sig.sent.at(-1), { type: 'video_view', trackSid: 'TR_a', width: 1280, height: 720, visible: false });
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  assert.equal(sig.sent.at(-1).visible, true);
  r.unwatch(a);
  const n = sig.sent.length;
  a.size = { width: 10, height: 10 };
  r.flush();
  assert.equal(sig.sent.length, n, 'unwatched: no report');
  r.close();
});

test('a new connection gets every tile again', () => {
  let sig = fakeSig();
  const r = new ViewReporter(() => sig);
  r.watch(tile(100, 100), 'TR_b');
  r.flush();
  assert.equal(sig.sent.length, 1);
  sig = fakeSig();
  r.flush();
  assert.equal(sig.sent.length, 1);
  r.close();
});
