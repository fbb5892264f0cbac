// Bootstrap: decide between the landing form and a meeting, obtain a
// token, and wire Call, LocalMedia and UI together. Also installs the
// read-only `window.parley` hook that end-to-end tests read.

import { Call } from './call.js';
import { LocalMedia } from './media.js';
import { UI, roomFromPath } from './ui.js';

const $ = (id) => document.getElementById(id);

let current = null; // {call, ui}
let lastJoin = null; // {room, name, token}
let lastEnd = null; // {status, message} of the call that ended last

function show(view) {
  for (const id of ['landing', 'call', 'ended']) $(id).hidden = id !== view;
}

// takeFragmentToken reads `#token=` and removes it from the address bar,
// so the token never lands in history, bookmarks or a copied link.
function takeFragmentToken() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get('token') || '';
  if (window.location.hash) {
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return token;
}

async function devToken(room, name) {
  let res;
  try {
    res = await fetch('/api/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, name }),
      credentials: 'same-origin',
    });
  } catch (err) {
    throw new Error(`Cannot reach the server: ${err.message}`);
  }
  if (res.status === 404) {
    throw new Error('This server needs an invitation link. Ask the host for one.');
  }
  let body = {};
  try { body = await res.json(); } catch { /* handled below */ }
  if (!res.ok || !body.token) {
    throw new Error(body.message || `Could not get a token (HTTP ${res.status}).`);
  }
  return body.token;
}

async function join({ room, name, token }) {
  const err = $('landing-error');
  err.hidden = true;
  const button = $('join-button');
  button.disabled = true;
  try {
    if (!token) token = await devToken(room, name);
  } catch (e) {
    show('landing');
    err.textContent = e.message;
    err.hidden = false;
    return;
  } finally {
    button.disabled = false;
  }
  lastJoin = { room, name, token };
  const path = `/r/${encodeURIComponent(room)}`;
  if (window.location.pathname !== path) history.pushState(null, '', path);
  show('call');
  $('room-name').textContent = room;
  const media = new LocalMedia();
  await media.open();
  const call = new Call({ token, name, media });
  const ui = new UI(call);
  current = { call, ui };
  ui.mount();
  if (media.error && !media.cam && !media.mic) ui.notice(`No camera or microphone: ${media.error}`);
  call.addEventListener('ended', (ev) => ended(call, ev.detail));
  call.start();
}

function ended(call, { message, status }) {
  if (!current || current.call !== call) return;
  lastEnd = { status, message };
  if (lastJoin) lastJoin.token = call.token; // the newest one
  current.ui.unmount();
  call.media.stopAll();
  current = null;
  $('ended-message').textContent = message || 'The call ended.';
  show('ended');
}

function boot() {
  const room = roomFromPath();
  const params = new URLSearchParams(window.location.search);
  const name = (params.get('name') || '').trim();
  const token = takeFragmentToken();
  if (window.location.pathname !== '/' && !room) {
    show('landing');
    return;
  }
  $('room-input').value = room;
  $('name-input').value = name;
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    join({ room: $('room-input').value.trim(), name: $('name-input').value.trim(), token: room === $('room-input').value.trim() ? token : '' });
  });
  $('rejoin-btn').addEventListener('click', () => {
    // After a refusal (typically an expired token) ask for a fresh one;
    // otherwise the newest token the call held is still good.
    if (lastJoin) join({ ...lastJoin, token: lastEnd && lastEnd.status === 'failed' ? '' : lastJoin.token });
    else show('landing');
  });
  window.addEventListener('pagehide', () => { if (current) current.call.leave(); });
  if (room && (name || token)) {
    join({ room, name, token });
  } else {
    show('landing');
    (room ? $('name-input') : $('room-input')).focus();
  }
}

// The hook exposes copies only; tests cannot steer the call through it
// except for the two explicit fault simulations under `debug`.
window.parley = Object.freeze({
  state: () => (current ? current.call.state()
    : { status: lastEnd ? lastEnd.status : 'idle', message: lastEnd ? lastEnd.message : '', participants: [], remoteTracks: [] }),
  stats: () => (current ? current.call.stats() : Promise.resolve([])),
  debug: Object.freeze({
    dropConnection: () => { if (current) current.call.dropConnection(); },
    restartIce: () => { if (current) current.call.forceIceRestart(); },
  }),
});

boot();
