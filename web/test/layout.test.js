import './env.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLayout, pickMain, gridColumns, SPEAKER_ABOVE } from '../static/layout.js';

const self = { key: 'self', identity: 'me', self: true, source: 'camera' };
const cam = (id) => ({ key: id, identity: id, self: false, source: 'camera' });
const screen = (id) => ({ key: `${id}:screen`, identity: id, self: false, source: 'screen' });
const ownScreen = { key: 'self:screen', identity: 'me', self: false, ownScreen: true, source: 'screen' };
const people = (n) => [self, ...Array.from({ length: n - 1 }, (_, i) => cam(`p${i + 1}`))];

const DESK = { width: 1256, height: 640 };
const PHONE = { width: 378, height: 600 };

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function assertNoOverlap(rects) {
  const shown = [...rects.entries()].filter(([, r]) => !r.hidden);
  for (let i = 0; i < shown.length; i++) {
    for (let j = i + 1; j < shown.length; j++) {
      assert.ok(!overlaps(shown[i][1], shown[j][1]), `${shown[i][0]} overlaps ${shown[j][0]}`);
    }
  }
}

test('a few people share a grid: same size, inside the area, no overlap', () => {
  const l = planLayout({ tiles: people(4), ...DESK });
  assert.equal(l.mode, 'grid');
  const sizes = new Set([...l.rects.values()].map((r) => `${r.w}x${r.h}`));
  assert.equal(sizes.size, 1);
  for (const r of l.rects.values()) {
    assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.w <= DESK.width && r.y + r.h <= DESK.height, JSON.stringify(r));
  }
  assertNoOverlap(l.rects);
});

test('the last row of the grid is centred', () => {
  const l = planLayout({ tiles: people(5), ...DESK });
  const rows = new Map();
  for (const r of l.rects.values()) rows.set(r.y, [...(rows.get(r.y) || []), r]);
  assert.ok(rows.size >= 2);
  for (const row of rows.values()) {
    const left = Math.min(...row.map((r) => r.x));
    const right = DESK.width - Math.max(...row.map((r) => r.x + r.w));
    assert.ok(Math.abs(left - right) <= 1, `row at left ${left}, right ${right}`);
  }
});

test('phones use one column for two people and two columns above', () => {
  assert.equal(gridColumns(1, PHONE.width, PHONE.height, true), 1);
  assert.equal(gridColumns(2, PHONE.width, PHONE.height, true), 1);
  assert.equal(gridColumns(3, PHONE.width, PHONE.height, true), 2);
  assert.equal(gridColumns(8, PHONE.width, PHONE.height, true), 2);
  const l = planLayout({ tiles: people(4), ...PHONE });
  assert.equal(new Set([...l.rects.values()].map((r) => r.x)).size, 2);
  for (const r of l.rects.values()) assert.ok(r.x + r.w <= PHONE.width);
  assertNoOverlap(l.rects);
});

test('a desktop takes the column count with the largest tiles', () => {
  assert.equal(gridColumns(1, 1200, 600, false), 1);
  assert.equal(gridColumns(2, 1200, 600, false), 2);
  assert.equal(gridColumns(9, 1200, 700, false), 3);
});

test('someone else\'s shared screen goes on stage, the people in a strip', () => {
  const tiles = [self, cam('ann'), screen('ann'), cam('bob')];
  const l = planLayout({ tiles, ...DESK });
  assert.equal(l.mode, 'stage');
  assert.equal(l.main, 'ann:screen');
  const main = l.rects.get('ann:screen');
  assert.equal(main.role, 'main');
  for (const k of ['self', 'ann', 'bob']) {
    const r = l.rects.get(k);
    assert.equal(r.role, 'strip');
    assert.ok(r.w * r.h < main.w * main.h / 4, `${k} is not small`);
  }
  assertNoOverlap(l.rects);
});

test('the sharer does not get their own screen on stage', () => {
  const l = planLayout({ tiles: [self, ownScreen, cam('ann')], ...DESK });
  assert.notEqual(l.main, 'self:screen');
  assert.equal(l.mode, 'grid');
  assert.equal(pickMain([self, ownScreen, cam('ann')], 'stage', '', ''), 'ann');
});

test('a pinned tile is large in any mode, even the grid', () => {
  for (const mode of ['auto', 'grid', 'speaker', 'stage']) {
    const l = planLayout({ tiles: [self, cam('ann'), screen('ann'), cam('bob')], mode, pinned: 'bob', ...DESK });
    assert.equal(l.main, 'bob', mode);
    assert.equal(l.rects.get('bob').role, 'main');
  }
  // A pin of someone who left is ignored.
  assert.equal(planLayout({ tiles: people(3), pinned: 'gone', ...DESK }).mode, 'grid');
});

test('speaker layout: more than six people, the active speaker large', () => {
  const tiles = people(SPEAKER_ABOVE + 1);
  assert.equal(planLayout({ tiles: people(SPEAKER_ABOVE), ...DESK }).mode, 'grid');
  const l = planLayout({ tiles, active: 'p4', ...DESK });
  assert.equal(l.mode, 'speaker');
  assert.equal(l.main, 'p4');
  // The speaker changes: the large tile follows.
  assert.equal(planLayout({ tiles, active: 'p2', ...DESK }).main, 'p2');
  // Nobody known to speak yet: the first other person.
  assert.equal(planLayout({ tiles, active: '', ...DESK }).main, 'p1');
  // The user is never large in their own speaker layout.
  assert.equal(planLayout({ tiles, active: 'me', ...DESK }).main, 'p1');
});

test('speaker layout chosen with few people', () => {
  const l = planLayout({ tiles: people(3), mode: 'speaker', active: 'p2', ...DESK });
  assert.equal(l.mode, 'speaker');
  assert.equal(l.main, 'p2');
  // Alone, there is nobody to show large.
  assert.equal(planLayout({ tiles: people(1), mode: 'speaker', ...DESK }).mode, 'grid');
});

test('a strip too short for everyone shows what fits and counts the rest', () => {
  const tiles = people(20);
  const l = planLayout({ tiles, mode: 'speaker', active: 'p3', ...PHONE });
  const strip = [...l.rects.values()].filter((r) => r.role === 'strip');
  const shown = strip.filter((r) => !r.hidden);
  assert.equal(strip.length, 19);
  assert.equal(l.more, 19 - shown.length);
  assert.ok(l.more > 0 && l.moreRect);
  for (const r of shown) assert.ok(r.x >= 0 && r.x + r.w <= PHONE.width, JSON.stringify(r));
  assert.ok(l.moreRect.x + l.moreRect.w <= PHONE.width);
  assertNoOverlap(new Map([...l.rects, ['more', { ...l.moreRect, hidden: false }]]));
});

test('on a phone the strip holds three people across', () => {
  const l = planLayout({ tiles: [self, cam('ann'), screen('ann'), cam('bob')], ...PHONE });
  const strip = [...l.rects.values()].filter((r) => r.role === 'strip');
  assert.equal(strip.length, 3);
  assert.ok(strip.every((r) => !r.hidden), JSON.stringify(strip));
  assert.equal(l.more, 0);
  assertNoOverlap(l.rects);
});
