import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendInit, layeredScreen, CAMERA_LAYERS, SCREEN_LAYERS } from '../static/session.js';

const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36';
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const EDGE = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15';
const IOS_CHROME = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1';

test('the camera is sent in three simulcast layers, lowest first, in every browser', () => {
  for (const ua of [CHROME, FIREFOX, SAFARI]) {
    const stream = {};
    const init = sendInit({ kind: 'video' }, 'camera', stream, ua);
    assert.equal(init.direction, 'sendonly');
    assert.deepEqual(init.streams, [stream]);
    assert.deepEqual(init.sendEncodings.map((e) => e.rid), ['q', 'h', 'f']);
    assert.deepEqual(init.sendEncodings.map((e) => e.scaleResolutionDownBy), [4, 2, 1]);
    // Copies: the browser may write into them.
    assert.notEqual(init.sendEncodings[0], CAMERA_LAYERS[0]);
  }
});

test('a screen share is sent in two full-resolution layers, the low one at a low frame rate', () => {
  const stream = {};
  const init = sendInit({ kind: 'video' }, 'screen', stream, CHROME);
  assert.equal(init.direction, 'sendonly');
  assert.deepEqual(init.streams, [stream]);
  const enc = init.sendEncodings;
  // Rids the SFU orders lowest first (q before f), whatever the order
  // the browser lists them in.
  assert.deepEqual(enc.map((e) => e.rid), ['q', 'f']);
  assert.deepEqual(enc.map((e) => e.scaleResolutionDownBy), [1, 1]);
  assert.ok(enc[0].maxFramerate > 0 && enc[0].maxFramerate <= 5, `low layer at ${enc[0].maxFramerate} fps`);
  assert.equal(enc[1].maxFramerate, undefined, 'the full layer keeps the capture rate');
  assert.ok(enc[0].maxBitrate < enc[1].maxBitrate);
  assert.notEqual(enc[0], SCREEN_LAYERS[0]);
});

test('screen shares are layered in Chromium-based browsers only', () => {
  assert.equal(layeredScreen(CHROME), true);
  assert.equal(layeredScreen(EDGE), true);
  assert.equal(layeredScreen(HEADLESS), true, 'headless Chromium (the end-to-end tests)');
  for (const ua of [FIREFOX, SAFARI, IOS_CHROME, '', undefined]) {
    assert.equal(layeredScreen(ua), false, ua);
    assert.equal(sendInit({ kind: 'video' }, 'screen', {}, ua).sendEncodings, undefined, ua);
  }
});

test('the microphone and the screen share audio keep one encoding', () => {
  assert.equal(sendInit({ kind: 'audio' }, 'microphone', {}, CHROME).sendEncodings, undefined);
  assert.equal(sendInit({ kind: 'audio' }, 'screen_audio', {}, CHROME).sendEncodings, undefined);
});
