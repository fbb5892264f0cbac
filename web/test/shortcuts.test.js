import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { typing } from '../static/shortcuts.js';

test('keys typed into fields are never shortcuts', () => {
  for (const tagName of ['INPUT', 'TEXTAREA', 'SELECT']) assert.equal(typing({ tagName }), true, tagName);
  assert.equal(typing({ tagName: 'DIV', isContentEditable: true }), true);
  assert.equal(typing({ tagName: 'BUTTON' }), false);
  assert.equal(typing({ tagName: 'BODY' }), false);
  assert.equal(typing(null), false);
});
