import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendInit, CAMERA_LAYERS } from '../static/session.js';

test('the camera is sent in three simulcast layers, lowest first', () => {
  const stream = {};
  const init = sendInit({ kind: 'video' }, 'camera', stream);
  assert.equal(init.direction, 'sendonly');
  assert.deepEqual(init.streams, [stream]);
  assert.deepEqual(init.sendEncodings.map((e) => e.rid), ['q', 'h', 'f']);
  assert.deepEqual(init.sendEncodings.map((e) => e.scaleResolutionDownBy), [4, 2, 1]);
  // Copies: the browser may write into them.
  assert.notEqual(init.sendEncodings[0], CAMERA_LAYERS[0]);
});

test('microphone and screen share keep one encoding', () => {
  assert.equal(sendInit({ kind: 'audio' }, 'microphone', {}).sendEncodings, undefined);
  assert.equal(sendInit({ kind: 'video' }, 'screen', {}).sendEncodings, undefined);
});
