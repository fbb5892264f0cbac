// The call's layout, DOM-free: given the tiles, the chosen mode, a pinned
// tile, the active speaker and the size of the area, where each tile goes.
//
// Modes: 'grid' (everyone the same size), 'speaker' (the active speaker
// large, the rest in a strip), 'stage' (a shared screen large, the people
// in a strip) and 'auto', which picks stage when someone else shares a
// screen, speaker with more than SPEAKER_ABOVE tiles, grid otherwise. A
// pinned tile is large whatever the mode. The sharer's own screen is never
// put large by the automatic choices: they see it already.

export const MODES = ['auto', 'grid', 'speaker', 'stage'];
export const SPEAKER_ABOVE = 6;
export const PHONE_WIDTH = 600; // style.css's phone query
const GAP = 10;
const PHONE_GAP = 6;
const MIN_TILE_W = 160; // below this the grid scrolls rather than shrinks
const STRIP_MAX_H = 140;
const STRIP_MIN_H = 72;

// tiles: [{key, identity, self, source ('camera'|'screen')}] in display
// order. active: the identity of the speaker to show large (the caller
// keeps the last remote one while the user speaks). width, height: the
// area in CSS pixels. Returns {mode, main, rects, more}: rects maps every
// key to {x, y, w, h, role ('grid'|'main'|'strip'), hidden}; hidden tiles
// did not fit the strip and more counts them; moreRect is then where the
// strip's last slot says "+more".
export function planLayout({ tiles, mode = 'auto', pinned = '', active = '', width, height }) {
  const phone = width < PHONE_WIDTH;
  const main = pickMain(tiles, mode, pinned, active);
  if (!main) return { mode: 'grid', main: '', more: 0, rects: gridRects(tiles, width, height, phone) };
  const focus = tiles.find((t) => t.key === main);
  const kind = focus.source === 'screen' || main === pinned ? 'stage' : 'speaker';
  const { rects, more, moreRect } = focusRects(tiles, main, width, height, phone);
  return { mode: kind, main, more, moreRect, rects };
}

// pickMain returns the key of the tile to show large, or '' for a grid.
export function pickMain(tiles, mode, pinned, active) {
  if (pinned && tiles.some((t) => t.key === pinned)) return pinned;
  if (mode === 'grid' || tiles.length < 2) return '';
  const screen = tiles.find((t) => t.source === 'screen' && !t.self && !t.ownScreen);
  if (screen && (mode === 'auto' || mode === 'stage')) return screen.key;
  if (mode === 'speaker' || mode === 'stage' || (mode === 'auto' && tiles.length > SPEAKER_ABOVE)) {
    const remote = tiles.filter((t) => !t.self && !t.ownScreen && t.source === 'camera');
    const speaking = remote.find((t) => active && t.identity === active);
    return (speaking || remote[0] || { key: '' }).key;
  }
  return '';
}

// gridColumns: phones use one column for one or two people and two
// above; wider areas take the column count that gives the largest 16:9
// tiles that all fit.
export function gridColumns(n, width, height, phone) {
  if (phone) return n <= 2 ? 1 : 2;
  let best = { cols: 1, w: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - GAP * (cols - 1)) / cols, ((height - GAP * (rows - 1)) / rows) * 16 / 9);
    if (w > best.w) best = { cols, w };
  }
  return best.cols;
}

// gridRects lays the tiles out in rows, each row centred, the block
// centred vertically when it fits (it scrolls when it does not).
function gridRects(tiles, width, height, phone) {
  const rects = new Map();
  const n = tiles.length;
  if (!n) return rects;
  const gap = phone ? PHONE_GAP : GAP;
  const cols = gridColumns(n, width, height, phone);
  const rows = Math.ceil(n / cols);
  let w = (width - gap * (cols - 1)) / cols;
  let h;
  if (phone) {
    // Taller than 16:9 on a portrait screen (up to square), never lower.
    h = Math.max(w * 9 / 16, Math.min(w, (height - gap * (rows - 1)) / rows));
  } else {
    w = Math.max(Math.min(w, ((height - gap * (rows - 1)) / rows) * 16 / 9), Math.min(MIN_TILE_W, width));
    h = w * 9 / 16;
  }
  w = Math.floor(w);
  h = Math.floor(h);
  const total = rows * h + (rows - 1) * gap;
  const y0 = Math.max(0, Math.floor((height - total) / 2));
  tiles.forEach((t, i) => {
    const row = Math.floor(i / cols);
    const inRow = Math.min(cols, n - row * cols);
    const x0 = Math.floor((width - (inRow * w + (inRow - 1) * gap)) / 2);
    rects.set(t.key, { x: x0 + (i % cols) * (w + gap), y: y0 + row * (h + gap), w, h, role: 'grid', hidden: false });
  });
  return rects;
}

// focusRects puts main in the area above a strip of the other tiles; the
// strip holds what fits across, the rest is hidden and counted in the
// strip's last slot.
function focusRects(tiles, main, width, height, phone) {
  const rects = new Map();
  const gap = phone ? PHONE_GAP : GAP;
  const others = tiles.filter((t) => t.key !== main);
  const stripH = others.length ? Math.floor(Math.max(STRIP_MIN_H, Math.min(STRIP_MAX_H, height * (phone ? 0.15 : 0.2)))) : 0;
  // Strip tiles are 16:9 where there is room; a narrow screen makes them
  // narrower (the video is cropped) so a few people still fit across.
  const few = Math.min(others.length, phone ? 3 : 5) || 1;
  const stripW = Math.floor(Math.min(stripH * 16 / 9, (width - gap * (few - 1)) / few));
  const mainH = others.length ? height - stripH - gap : height;
  rects.set(main, { x: 0, y: 0, w: Math.floor(width), h: Math.floor(mainH), role: 'main', hidden: false });
  const fit = Math.max(1, Math.floor((width + gap) / (stripW + gap)));
  const shown = others.length <= fit ? others.length : fit - 1;
  const slots = others.length <= fit ? shown : fit;
  const x0 = Math.floor((width - (slots * stripW + (slots - 1) * gap)) / 2);
  others.forEach((t, i) => {
    const hidden = i >= shown;
    rects.set(t.key, {
      x: hidden ? 0 : x0 + i * (stripW + gap), y: Math.floor(mainH + gap), w: stripW, h: stripH, role: 'strip', hidden,
    });
  });
  const more = others.length - shown;
  const moreRect = more ? { x: x0 + shown * (stripW + gap), y: Math.floor(mainH + gap), w: stripW, h: stripH } : null;
  return { rects, more, moreRect };
}
