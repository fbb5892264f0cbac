// Bootstrap: decide between the landing form and a meeting, obtain a
// token, and wire Call, LocalMedia and UI together. Also installs the
// read-only `window.parley` hook that end-to-end tests read.

import { Call } from './call.js';
import { LocalMedia } from './media.js';
import { UI, roomFromPath, roomLabel } from './ui.js';
import { Chat } from './chat.js';
import { ChatUI } from './chat-ui.js';
import { startChatPage, CHAT_TOKEN_KEY } from './chat-page.js';
import { $ } from './dom.js';


let current = null; // {call, ui, chat, chatUI}
let chatPage = null; // {messenger, chat, calls, ui} on /chat
let lastJoin = null; // {room, name, token}
let lastEnd = null; // {status, message} of the call that ended last

function show(view) {
  for (const id of ['landing', 'call', 'ended', 'messenger', 'chat-signin']) $(id).hidden = id !== view;
}

// relayMode reads the `?relay=` diagnostic (web/README.md): 1/true/all
// force TURN relay, udp/tcp force relay over that transport only.
function relayMode() {
  const v = (new URLSearchParams(window.location.search).get('relay') || '').toLowerCase();
  if (v === '1' || v === 'true' || v === 'all') return 'all';
  if (v === 'udp' || v === 'tcp') return v;
  return '';
}

// tokenRoom reads the room claim of a JWT without verifying it (the
// server does that); it only picks the page to show. null: unreadable.
function tokenRoom(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    return typeof claims.room === 'string' ? claims.room : null;
  } catch {
    return null;
  }
}

// mountChat adds the chat panel beside the video grid of a call.
function mountChat(call) {
  const chat = new Chat();
  chat.attach(call);
  const panel = $('chat-panel');
  const chatUI = new ChatUI({ root: panel, chat, mode: 'panel' });
  const btn = $('chat-btn');
  const setOpen = (open) => {
    panel.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
    chatUI.setOpen(open);
    if (current) current.ui.layout();
  };
  btn.onclick = () => setOpen(panel.hidden);
  chatUI.onRender = () => {
    // A token without the chat grant has no chat to show.
    if (chat.status === 'disabled' && !btn.hidden) {
      btn.hidden = true;
      setOpen(false);
    }
    const n = panel.hidden ? chatUI.totalUnread() : 0;
    const badge = $('chat-badge');
    badge.textContent = String(n);
    badge.hidden = n === 0;
  };
  setOpen(window.innerWidth >= 900);
  return { chat, chatUI };
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
  $('room-name').textContent = roomLabel(room);
  const media = new LocalMedia();
  await media.open();
  const call = new Call({ token, name, media, relay: relayMode() });
  const ui = new UI(call);
  current = { call, ui };
  Object.assign(current, mountChat(call));
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
  current.chat.stop();
  call.media.stopAll();
  current = null;
  $('ended-message').textContent = message || 'The call ended.';
  $('back-to-chats').hidden = !sessionStorage.getItem(CHAT_TOKEN_KEY);
  show('ended');
}

function bootChat(token) {
  if (window.location.pathname !== '/chat') history.replaceState(null, '', '/chat' + window.location.search);
  token = token || sessionStorage.getItem(CHAT_TOKEN_KEY) || '';
  if (!token) {
    show('chat-signin');
    return;
  }
  show('messenger');
  chatPage = startChatPage(token);
  chatPage.messenger.addEventListener('ended', (ev) => {
    if (ev.detail.status === 'failed') {
      $('chat-signin-message').textContent = `${ev.detail.message}. Open a fresh chat link.`;
      show('chat-signin');
    }
  });
}

function boot() {
  const room = roomFromPath();
  const params = new URLSearchParams(window.location.search);
  const name = (params.get('name') || '').trim();
  const token = takeFragmentToken();
  // A token without a room is a messaging-only token: the chat page.
  if (window.location.pathname === '/chat' || (window.location.pathname === '/' && token && tokenRoom(token) === '')) {
    bootChat(token);
    return;
  }
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
  window.addEventListener('pagehide', () => {
    if (!current) return;
    current.chat.receipts.flushNow();
    current.call.leave();
  });
  if (room && (name || token)) {
    join({ room, name, token });
  } else {
    show('landing');
    (room ? $('name-input') : $('room-input')).focus();
  }
}

function chatState() {
  const chat = current ? current.chat : chatPage ? chatPage.chat : null;
  if (!chat) return null;
  const link = current ? current.call : chatPage.messenger;
  return {
    ...chat.snapshot(),
    link: { status: link.status, reconnects: link.reconnects },
    calls: chatPage ? chatPage.calls.snapshot() : null,
  };
}

// The hook exposes copies only; tests cannot steer the call through it
// except for the explicit fault simulations under `debug`.
window.parley = Object.freeze({
  state: () => (current ? current.call.state()
    : { status: lastEnd ? lastEnd.status : 'idle', message: lastEnd ? lastEnd.message : '', participants: [], remoteTracks: [] }),
  stats: () => (current ? current.call.stats() : Promise.resolve([])),
  // transport: the selected ICE candidate pair of each PeerConnection.
  transport: () => (current ? current.call.transport() : Promise.resolve({})),
  // chat: conversations, messages (seq, status), unread counts, presence,
  // and on /chat the call invitations (ringing state, ring tone).
  chat: chatState,
  debug: Object.freeze({
    dropConnection: () => {
      if (current) current.call.dropConnection();
      else if (chatPage) chatPage.messenger.dropConnection();
    },
    restartIce: () => { if (current) current.call.forceIceRestart(); },
    // dropChatPushes(n) loses the next n pushed chat messages, as a
    // server that dropped them for a slow connection would.
    dropChatPushes: (n) => {
      const chat = current ? current.chat : chatPage ? chatPage.chat : null;
      if (chat) chat.dropPushes = Math.max(0, Number(n) || 0);
    },
  }),
});

boot();
