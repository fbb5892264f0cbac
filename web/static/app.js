// Bootstrap: decide between the landing form, a meeting and /chat, obtain a
// token, and wire Call, LocalMedia and UI together. The App object owns
// what the page currently shows; `window.parley` (hook.js) reads it.

import { Call } from './call.js';
import { LocalMedia } from './media.js';
import { UI, roomFromPath, roomLabel } from './ui.js';
import { Chat } from './chat.js';
import { ChatUI } from './chat-ui.js';
import { ModUI } from './mod-ui.js';
import { Hands } from './hands.js';
import { Reactions } from './reactions.js';
import { RecordingUI } from './recording.js';
import { RestreamUI } from './restream.js';
import { UnmuteAsk } from './unmute-ask.js';
import { CallEnd } from './call-end.js';
import { QualityUI } from './quality.js';
import { SpeakerUI } from './speakers.js';
import { ClientStats } from './client-stats.js';
import { PreJoin } from './prejoin.js';
import { RoomPeople } from './people.js';
import { Attention } from './attention.js';
import { Shortcuts, typing } from './shortcuts.js';
import { loadChoices, saveChoices } from './join-choices.js';
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

// GUEST_KEY holds the dev-mode guest credential (docs/protocol.md, "Dev
// guests"): the server's signature over the guest identity it minted, so
// this browser gets the same identity back after a reload or a restart.
const GUEST_KEY = 'parley.guest';

// ROOM_RE is the server's room-name rule (rooms.ValidName); ROOM_RULE
// says it in words (rooms.NameRule).
const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ROOM_RULE = 'A room name uses letters, digits, - and _ only (no spaces or dots), up to 64 characters.';

function storage(fn) {
  try { return fn(window.localStorage); } catch { return null; } // storage may be disabled
}

async function devToken(room, name) {
  let res;
  try {
    res = await fetch('/api/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, name, guest: storage((ls) => ls.getItem(GUEST_KEY)) || '' }),
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
  if (body.guest) storage((ls) => ls.setItem(GUEST_KEY, body.guest));
  return body.token;
}

// friendlyEnd says why a link stopped working in words a person acts on.
export function friendlyEnd(message) {
  if (/^unauthorized: token expired/.test(message || '')) return 'This link has expired, ask for a new one.';
  if (/^unauthorized: (invalid token|token revoked)/.test(message || '')) return 'This link is not valid, ask for a new one.';
  if (/^banned:/.test(message || '')) return 'A moderator removed you from this meeting: you cannot rejoin it.';
  return message;
}

// NARROW is where the chat panel stops fitting beside the grid: below it
// the panel lays over the grid and starts closed (style.css uses the same
// query).
const NARROW = '(max-width: 900px)';

// mediaAdvice explains a failed camera/microphone request and what to do.
function mediaAdvice(name) {
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Camera and microphone are blocked for this site. To allow them, click the camera or lock icon in the address bar, choose Allow, then press Retry.';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return 'No camera or microphone was found. Connect one, then press Retry.';
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return 'The camera or microphone is in use by another application. Close it, then press Retry.';
  }
  return 'Camera and microphone are not available. Others can still see and hear you once you press Retry and allow them.';
}

function show(view) {
  for (const id of ['landing', 'prejoin', 'call', 'ended', 'messenger', 'chat-signin', 'mismatch']) $(id).hidden = id !== view;
}

class App {
  constructor() {
    // The switch is read once: joining a room rewrites the address.
    this.debug = debugEnabled();
    this.meeting = null; // {call, ui, chat, chatUI, tap} while in a call
    this.chatPage = null; // {messenger, chat, calls, ui, tap} on /chat
    this.lastJoin = null; // {room, name, token, fromLink}
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
    $('name-input').value = name || loadChoices(storage((ls) => ls)).name;
    $('join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const r = $('room-input').value.trim();
      if (!ROOM_RE.test(r)) {
        $('landing-error').textContent = ROOM_RULE;
        $('landing-error').hidden = false;
        $('room-input').focus();
        return;
      }
      const n = $('name-input').value.trim();
      if (room === r && token) this.join({ room: r, name: n, token });
      else this.preJoin(r, n);
    });
    $('rejoin-btn').addEventListener('click', () => {
      // After a refusal (typically an expired token) ask for a fresh one;
      // otherwise the newest token the call held is still good.
      const j = this.lastJoin;
      const fresh = this.lastEnd && this.lastEnd.status === 'failed';
      if (j) this.join({ ...j, token: fresh ? '' : j.token, fromLink: !fresh && j.fromLink });
      else show('landing');
    });
    window.addEventListener('pagehide', () => {
      if (!this.meeting) return;
      this.meeting.chat.receipts.flushNow();
      this.meeting.call.leave();
    });
    // An invitation names its room; opened at another room's address it
    // would put the user somewhere the address does not say.
    const invited = token ? tokenRoom(token) : null;
    if (room && invited && invited !== '*' && invited !== room) { // '*': an admin token, valid everywhere
      $('mismatch-message').textContent = `This invitation is for the room “${invited}”, but the address says “${room}”.`;
      const go = $('mismatch-join');
      go.textContent = `Join “${invited}”`;
      go.onclick = () => this.join({ room: invited, name, token });
      show('mismatch');
      return;
    }
    // A link that says who the user is (?name= or an invitation) joins
    // at once with the remembered choices; a bare room link asks first.
    if (room && (name || token)) {
      this.join({ room, name, token });
    } else if (room) {
      this.preJoin(room, '');
    } else {
      show('landing');
      (room ? $('name-input') : $('room-input')).focus();
    }
  }

  // preJoin shows the pre-join screen for room, then joins with what the
  // user chose there.
  async preJoin(room, name) {
    const path = `/r/${encodeURIComponent(room)}`;
    if (window.location.pathname !== path) history.pushState(null, '', path);
    show('prejoin');
    const choices = await new PreJoin(storage((ls) => ls)).run(room, name);
    this.join({ room, name: choices.name, token: '', choices });
  }

  // join enters room; fromLink says the token came with the link (an
  // invitation), not from the dev-token endpoint, and survives rejoins.
  // choices are the pre-join screen's (join-choices.js); without them the
  // remembered ones apply.
  async join({ room, name, token, fromLink = !!token, choices = loadChoices(storage((ls) => ls)) }) {
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
    this.lastJoin = { room, name, token, fromLink };
    const path = `/r/${encodeURIComponent(room)}`;
    if (window.location.pathname !== path) history.pushState(null, '', path);
    show('call');
    $('room-name').textContent = roomLabel(room);
    const media = new LocalMedia();
    await media.open({ camera: choices.camera, microphone: choices.microphone });
    // Muted or camera-off from the start: the tracks are published
    // disabled, so the others never see or hear a moment of them.
    if (!choices.micOn) media.setEnabled('microphone', false);
    if (!choices.camOn) media.setEnabled('camera', false);
    // A guest token (dev mode) is renewed by itself when the server no
    // longer takes it (a restart changed the dev key); an invitation's
    // token is not, the user needs a new link.
    const renew = fromLink ? null : () => devToken(room, name);
    const call = new Call({ token, name, media, relay: relayMode(), renew });
    const ui = new UI(call, {
      speaker: choices.speaker,
      // A device picked during the call is the one to use next time too.
      remember: (kind, id) => {
        const store = storage((ls) => ls);
        saveChoices(store, { ...loadChoices(store), [kind]: id });
      },
    });
    const chatParts = this.mountChat(call);
    const mod = new ModUI(call, chatParts.chatUI);
    const people = new RoomPeople(call);
    const attention = new Attention({ chat: chatParts.chat, button: $('notify-enable-call') });
    const keys = new Shortcuts(call);
    const extras = [new Hands(call), new Reactions(call), new UnmuteAsk(call), new RecordingUI(call), new RestreamUI(call),
      new SpeakerUI(call, $('grid')), people, attention, keys, new CallEnd(call), new QualityUI(call)]; // after ui: its tiles exist when they render
    extras.push(new ClientStats(call)); // getStats() summaries for the admin API (issue #11)
    this.meeting = { call, ui, mod, extras, ...chatParts };
    ui.mount();
    mod.mount();
    for (const x of extras) x.mount();
    // Connection quality after ModUI's badges (hand, moderator) in the people list.
    const modDecorate = chatParts.chatUI.decoratePerson;
    chatParts.chatUI.decoratePerson = (p, it) => {
      if (modDecorate) modDecorate(p, it);
      people.decorate(p, it);
    };
    if (!media.cam && !media.mic) ui.mediaProblem(mediaAdvice(media.errorName));
    call.addEventListener('ended', (ev) => this.ended(call, ev.detail));
    call.start();
  }

  // mountChat adds the chat panel beside the video grid of a call.
  mountChat(call) {
    const chat = new Chat();
    const tap = this.tap(call);
    chat.attach(tap || call);
    const panel = $('chat-panel');
    const chatUI = new ChatUI({ root: $('chat-panel-body'), chat, mode: 'panel', roster: call });
    const btn = $('chat-btn');
    const setOpen = (open) => {
      panel.hidden = !open;
      btn.setAttribute('aria-expanded', String(open));
      chatUI.setOpen(open);
      if (this.meeting) this.meeting.ui.layout();
    };
    btn.onclick = () => setOpen(panel.hidden);
    // The count in the top bar opens the people in the call.
    $('people-btn').onclick = () => {
      setOpen(true);
      chatUI.showList();
    };
    $('chat-close').onclick = () => {
      setOpen(false);
      btn.focus();
    };
    // Escape closes the panel (an edit in progress takes its own Escape).
    const onKey = (ev) => {
      if (ev.key !== 'Escape' || panel.hidden || ev.defaultPrevented) return;
      if (ev.target && ev.target.classList && ev.target.classList.contains('msg-edit')) return;
      if (typing(ev.target) && ev.target.value) return; // Escape first leaves what is being typed
      setOpen(false);
      btn.focus();
    };
    document.addEventListener('keydown', onKey);
    call.addEventListener('ended', () => document.removeEventListener('keydown', onKey), { once: true });
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
    setOpen(!window.matchMedia(NARROW).matches);
    return { chat, chatUI, tap };
  }

  ended(call, { message, status }) {
    const m = this.meeting;
    if (!m || m.call !== call) return;
    this.lastEnd = { status, message };
    if (this.lastJoin) this.lastJoin.token = call.token; // the newest one
    m.ui.unmount();
    m.mod.unmount();
    for (const x of m.extras) x.unmount();
    m.chat.stop();
    call.media.stopAll();
    this.meeting = null;
    $('ended-message').textContent = friendlyEnd(message) || 'The call ended.';
    $('back-to-chats').hidden = !sessionStorage.getItem(CHAT_TOKEN_KEY);
    show('ended');
  }

  async bootChat(token) {
    if (window.location.pathname !== '/chat') history.replaceState(null, '', '/chat' + window.location.search);
    token = token || sessionStorage.getItem(CHAT_TOKEN_KEY) || '';
    let renew = null;
    if (!token) {
      // Dev mode: a guest gets a messaging-only token as it gets a call
      // token (same identity, kept by this browser); elsewhere /chat needs
      // the chat link someone gave.
      const name = loadChoices(storage((ls) => ls)).name;
      renew = () => devToken('', name);
      try {
        token = await renew();
      } catch {
        show('chat-signin');
        return;
      }
    }
    show('messenger');
    this.chatPage = startChatPage(token, { tap: (link) => this.tap(link), renew });
    this.chatPage.messenger.addEventListener('ended', (ev) => {
      if (ev.detail.status === 'failed') {
        const why = friendlyEnd(ev.detail.message);
        $('chat-signin-message').textContent = why === ev.detail.message ? `${why}. Open a fresh chat link.` : why;
        show('chat-signin');
      }
    });
  }
}

const app = new App();
installHook(app);
app.boot();
