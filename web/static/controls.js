// addControl adds a button to the call's control bar, in the style of
// the page's own (an icon over a short label), before the control whose
// id is before (at the end when there is none), and returns it. The
// call page's features that live in their own modules (hands.js,
// reactions.js, unmute-ask.js) add their buttons this way.

import { $, el } from './dom.js';

export function addControl({ id, testid, glyph, text, before }) {
  const btn = el('button', 'ctl', { id, testid, type: 'button', title: text });
  btn.append(el('span', 'glyph', { 'aria-hidden': 'true', text: glyph }), el('span', 'txt', { text }));
  const bar = document.querySelector('.controls');
  const next = before ? $(before) : null;
  if (next && next.parentNode === bar) bar.insertBefore(btn, next);
  else bar.append(btn);
  return btn;
}
