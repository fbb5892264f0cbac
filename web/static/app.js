// Bootstrap: decide between the landing form, a meeting and /chat, obtain a
// token, and wire Call, LocalMedia and UI together. The App object owns
// what the page currently shows; `window.parley` (hook.js) reads it.

import { Call } from './call.js';
import { LocalMedia } from './media.js';
import { UI, roomFromPath, roomLabel } from './ui.js';
import { Chat } from './chat.js';
import { ChatUI } from './chat-ui.js';
import { startChatPage, CHAT_TOKEN_KEY } from './chat-page.js';
import { $ } from './dom.js';
import { debugEnabled, ChatTap } from './debug.js';
import { installHook } from './hook.js';

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

function show(view) {
  for (const id of ['landing', 'call', 'ended', 'messenger', 'chat-signin']) $(id).hidden = id !== view;
}

class App {
  constructor() {
    // The switch is read once: joining a room rewrites the address.
    this.debug = debugEnabled();
    this.meeting = null; // {call, ui, chat, chatUI, tap} while in a call
    this.chatPage = null; // {messenger, chat, calls, ui, tap} on /chat
    this.lastJoin = null; // {room, name, token}
    this.lastEnd = null; // {status, message} of the call that ended last
  }

  // link is the connection the page's chat rides on.
  link() {
    if (this.meeting) return this.meeting.call;
    return this.chatPage ? this.chatPage.messenger : null;
  }

  chatTap() {
    const view = this.meeting || this.chatPage;
    return view ? view.tap : null;
  }

  // tap puts a ChatTap between link and the chat in debug mode.
  tap(link) {
    return this.debug ? new ChatTap(link) : null;
  }

  boot() {
    const room = roomFromPath();
    const params = new URLSearchParams(window.location.search);
    const name = (params.get('name') || '').trim();
    const token = takeFragmentToken();
    // A token without a room is a messaging-only token: the chat page.
    if (window.location.pathname === '/chat' || (window.location.pathname === '/' && token && tokenRoom(token) === '')) {
      this.bootChat(token);
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
      const r = $('room-input').value.trim();
      this.join({ room: r, name: $('name-input').value.trim(), token: room === r ? token : '' });
    });
    $('rejoin-btn').addEventListener('click', () => {
      // After a refusal (typically an expired token) ask for a fresh one;
      // otherwise the newest token the call held is still good.
      const j = this.lastJoin;
      if (j) this.join({ ...j, token: this.lastEnd && this.lastEnd.status === 'failed' ? '' : j.token });
      else show('landing');
    });
    window.addEventListener('pagehide', () => {
      if (!this.meeting) return;
      this.meeting.chat.receipts.flushNow();
      this.meeting.call.leave();
    });
    if (room && (name || token)) {
      this.join({ room, name, token });
    } else {
      show('landing');
      (room ? $('name-input') : $('room-input')).focus();
    }
  }

  async join({ room, name, token }) {
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
    this.lastJoin = { room, name, token };
    const path = `/r/${encodeURIComponent(room)}`;
    if (window.location.pathname !== path) history.pushState(null, '', path);
    show('call');
    $('room-name').textContent = roomLabel(room);
    const media = new LocalMedia();
    await media.open();
    const call = new Call({ token, name, media, relay: relayMode() });
    const ui = new UI(call);
    this.meeting = { call, ui, ...this.mountChat(call) };
    ui.mount();
    if (media.error && !media.cam && !media.mic) ui.notice(`No camera or microphone: ${media.error}`);
    call.addEventListener('ended', (ev) => this.ended(call, ev.detail));
    call.start();
  }

  // mountChat adds the chat panel beside the video grid of a call.
  mountChat(call) {
    const chat = new Chat();
    const tap = this.tap(call);
    chat.attach(tap || call);
    const panel = $('chat-panel');
    const chatUI = new ChatUI({ root: panel, chat, mode: 'panel' });
    const btn = $('chat-btn');
    const setOpen = (open) => {
      panel.hidden = !open;
      btn.setAttribute('aria-expanded', String(open));
      chatUI.setOpen(open);
      if (this.meeting) this.meeting.ui.layout();
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
    return { chat, chatUI, tap };
  }

  ended(call, { message, status }) {
    const m = this.meeting;
    if (!m || m.call !== call) return;
    this.lastEnd = { status, message };
    if (this.lastJoin) this.lastJoin.token = call.token; // the newest one
    m.ui.unmount();
    m.chat.stop();
    call.media.stopAll();
    this.meeting = null;
    $('ended-message').textContent = message || 'The call ended.';
    $('back-to-chats').hidden = !sessionStorage.getItem(CHAT_TOKEN_KEY);
    show('ended');
  }

  bootChat(token) {
    if (window.location.pathname !== '/chat') history.replaceState(null, '', '/chat' + window.location.search);
    token = token || sessionStorage.getItem(CHAT_TOKEN_KEY) || '';
    if (!token) {
      show('chat-signin');
      return;
    }
    show('messenger');
    this.chatPage = startChatPage(token, { tap: (link) => this.tap(link) });
    this.chatPage.messenger.addEventListener('ended', (ev) => {
      if (ev.detail.status === 'failed') {
        $('chat-signin-message').textContent = `${ev.detail.message}. Open a fresh chat link.`;
        show('chat-signin');
      }
    });
  }
}

const app = new App();
installHook(app);
app.boot();
