import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unreadTitle } from '../static/attention.js';

test('the tab title counts unread messages, capped for width', () => {
  assert.equal(unreadTitle('Parley', 0), 'Parley');
  assert.equal(unreadTitle('Parley', 3), '(3) Parley');
  assert.equal(unreadTitle('Parley', 250), '(99+) Parley');
});
