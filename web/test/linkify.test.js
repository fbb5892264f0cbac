import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkParts, safeHref } from '../static/linkify.js';

const join = (parts) => parts.map((p) => p.text).join('');

test('linkParts finds http and https links and keeps every character', () => {
  const text = 'see https://example.com/a?b=1, and http://x.org.';
  const parts = linkParts(text);
  assert.equal(join(parts), text);
  assert.deepEqual(parts.filter((p) => p.href).map((p) => p.href), ['https://example.com/a?b=1', 'http://x.org/']);
  assert.deepEqual(parts.filter((p) => p.href).map((p) => p.text), ['https://example.com/a?b=1', 'http://x.org']);
});

test('linkParts makes www. links https and leaves other schemes as text', () => {
  assert.deepEqual(linkParts('www.parley.dev'), [{ text: 'www.parley.dev', href: 'https://www.parley.dev/' }]);
  for (const t of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'ftp://x.org', 'mailto:a@b.c', '<a href="https://x.org">x</a>']) {
    const parts = linkParts(t);
    assert.equal(join(parts), t);
    for (const p of parts) if (p.href) assert.match(p.href, /^https?:\/\//);
  }
});

test('linkParts keeps markup as text', () => {
  const t = '<img src=x onerror=alert(1)> https://e.com/<b>';
  const parts = linkParts(t);
  assert.equal(join(parts), t);
  assert.deepEqual(parts.filter((p) => p.href).map((p) => p.href), ['https://e.com/']);
});

test('safeHref accepts only http and https', () => {
  assert.equal(safeHref('https://a.b/c'), 'https://a.b/c');
  assert.equal(safeHref('javascript://x'), '');
  assert.equal(safeHref('http://'), '');
});

test('linkParts bounds the links per message', () => {
  const t = Array.from({ length: 80 }, (_, i) => `https://e.com/${i}`).join(' ');
  const parts = linkParts(t);
  assert.equal(join(parts), t);
  assert.equal(parts.filter((p) => p.href).length, 50);
});
