import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadChoices, saveChoices, cleanChoices, defaultChoices, deviceConstraint, CHOICES_KEY } from '../static/join-choices.js';

function memoryStore() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), m };
}

test('nothing stored gives the defaults: microphone and camera on', () => {
  assert.deepEqual(loadChoices(memoryStore()), defaultChoices());
  assert.equal(loadChoices(memoryStore()).micOn, true);
  assert.equal(loadChoices(null).camOn, true);
});

test('saved choices come back', () => {
  const s = memoryStore();
  const c = { name: 'Ada', micOn: false, camOn: false, camera: 'cam-2', microphone: 'mic-1', speaker: 'spk-3' };
  assert.equal(saveChoices(s, c), true);
  assert.deepEqual(loadChoices(s), c);
});

test('malformed or hostile stored data falls back field by field', () => {
  const s = memoryStore();
  s.setItem(CHOICES_KEY, '{not json');
  assert.deepEqual(loadChoices(s), defaultChoices());
  s.setItem(CHOICES_KEY, JSON.stringify({ name: 42, micOn: 'no', camOn: false, camera: 'x'.repeat(1000), speaker: 'ok' }));
  assert.deepEqual(loadChoices(s), { ...defaultChoices(), camOn: false, speaker: 'ok' });
});

test('names are trimmed and bounded', () => {
  assert.equal(cleanChoices({ name: '  Bob  ' }).name, 'Bob');
  assert.equal(cleanChoices({ name: 'n'.repeat(100) }).name.length, 64);
});

test('storage that throws (disabled, full) is not fatal', () => {
  const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('quota'); } };
  assert.deepEqual(loadChoices(broken), defaultChoices());
  assert.equal(saveChoices(broken, defaultChoices()), false);
});

test('a remembered device is preferred, not required', () => {
  assert.deepEqual(deviceConstraint('abc'), { deviceId: { ideal: 'abc' } });
  assert.deepEqual(deviceConstraint(''), {});
});
