import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tileSpeech, rmsDb, SpeechDetector } from '../static/speakers.js';

test('tileSpeech: active speaker and levels by identity', () => {
  const body = { active: 'ada', speakers: [{ identity: 'ada', level: 0.7 }, { identity: 'bob', level: 0.25 }] };
  assert.deepEqual(tileSpeech(body, 'ada'), { active: true, level: 0.7 });
  assert.deepEqual(tileSpeech(body, 'bob'), { active: false, level: 0.25 });
  assert.deepEqual(tileSpeech(body, 'cyd'), { active: false, level: 0 });
  assert.deepEqual(tileSpeech(null, 'ada'), { active: false, level: 0 });
  // An empty identity (a screen tile) never matches an empty active.
  assert.deepEqual(tileSpeech({ active: '', speakers: [] }, ''), { active: false, level: 0 });
  // Levels are clamped.
  assert.equal(tileSpeech({ speakers: [{ identity: 'x', level: 7 }] }, 'x').level, 1);
});

test('rmsDb', () => {
  assert.equal(rmsDb(new Float32Array(128)), -100);
  assert.ok(Math.abs(rmsDb(new Float32Array(128).fill(1))) < 1e-9);
  assert.ok(Math.abs(rmsDb(new Float32Array(128).fill(0.1)) + 20) < 1e-6);
});

test('SpeechDetector: speech while muted shows the hint, a click does not', () => {
  const d = new SpeechDetector({ thresholdDb: -45, onMs: 400, holdMs: 3000 });
  // A 200 ms click: no hint.
  for (let t = 0; t <= 200; t += 100) assert.equal(d.update(t, -20, true), false);
  for (let t = 300; t <= 1000; t += 100) assert.equal(d.update(t, -80, true), false);
  // Speech for 500 ms: the hint shows once 400 ms are reached.
  let shown = -1;
  for (let t = 2000; t <= 2500; t += 100) if (d.update(t, -25, true) && shown < 0) shown = t;
  assert.equal(shown, 2400);
  // It stays through a pause shorter than the hold time, then hides.
  assert.equal(d.update(4000, -80, true), true);
  assert.equal(d.update(5600, -80, true), false);
  // Unmuting hides it at once.
  for (let t = 6000; t <= 6500; t += 100) d.update(t, -25, true);
  assert.equal(d.update(6600, -25, false), false);
});

test('redFirst puts audio/red first and leaves a list without it alone', async () => {
  const { redFirst } = await import('../static/session.js');
  const opus = { mimeType: 'audio/opus' };
  const red = { mimeType: 'audio/red' };
  const pcmu = { mimeType: 'audio/PCMU' };
  assert.deepEqual(redFirst([opus, red, pcmu]), [red, opus, pcmu]);
  const plain = [opus, pcmu];
  assert.equal(redFirst(plain), plain);
});
