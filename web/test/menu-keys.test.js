import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { menuStep } from '../static/menu-keys.js';

test('menuStep moves down and up with wrap-around', () => {
  assert.equal(menuStep('ArrowDown', 0, 2), 1);
  assert.equal(menuStep('ArrowDown', 1, 2), 0);
  assert.equal(menuStep('ArrowUp', 0, 2), 1);
  assert.equal(menuStep('ArrowUp', 1, 3), 0);
});

test('menuStep starts at an end when nothing is focused, Home and End jump', () => {
  assert.equal(menuStep('ArrowDown', -1, 3), 0);
  assert.equal(menuStep('ArrowUp', -1, 3), 2);
  assert.equal(menuStep('Home', 2, 3), 0);
  assert.equal(menuStep('End', 0, 3), 2);
});

test('menuStep ignores other keys and empty menus', () => {
  assert.equal(menuStep('a', 0, 3), -1);
  assert.equal(menuStep('Tab', 0, 3), -1);
  assert.equal(menuStep('ArrowDown', -1, 0), -1);
});
