import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoff } from '../static/signaling.js';

const middle = () => 0.5; // no jitter: the base delay

test('backoff doubles from 0.5 s and stops at 10 s', () => {
  const got = [0, 1, 2, 3, 4, 5, 6].map((a) => backoff(a, middle));
  assert.deepEqual(got, [500, 1000, 2000, 4000, 8000, 10000, 10000]);
});

test('backoff stays at 10 s for any later attempt', () => {
  assert.equal(backoff(60, middle), 10000);
  assert.equal(backoff(1e6, middle), 10000);
});

test('backoff jitters by at most 25% either way', () => {
  assert.equal(backoff(0, () => 0), 375);
  assert.equal(backoff(0, () => 0.999999), 625);
  assert.equal(backoff(9, () => 0), 7500);
  assert.equal(backoff(9, () => 0.999999), 12500);
});
