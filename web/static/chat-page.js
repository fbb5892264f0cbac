// The /chat page: a messaging session without a call. It shows the
// user's conversations, lets them message and call people, rings for
// incoming calls, and on an accepted call moves to the call room with the
// fresh token from `call_accepted`.

import { Chat } from './chat.js';
import { ChatUI } from './chat-ui.js';
import { Calls } from './calls.js';
import { CallsUI } from './calls-ui.js';
import { Messenger } from './messenger.js';
import { $, showPill } from './dom.js';
import { Attention } from './attention.js';

export const CHAT_TOKEN_KEY = 'parley.chatToken';

const PILL_WORDS = { connected: 'Online', closed: 'Signed out' };

// startChatPage runs the page with token; it returns the pieces the test
// hook reads. tap(link) may put a debug ChatTap between the link and the
// chat (app.js, with ?debug); null: none.
// renew: see Messenger (dev guests only).
export function startChatPage(token, { tap = () => null, renew = null } = {}) {
  sessionStorage.setItem(CHAT_TOKEN_KEY, token);
  const messenger = new Messenger({ token, renew });
  messenger.addEventListener('token', (ev) => sessionStorage.setItem(CHAT_TOKEN_KEY, ev.detail));
  const chat = new Chat();
  const chatTap = tap(messenger);
  chat.attach(chatTap || messenger);
  const calls = new Calls({ chat });
  calls.attach(messenger);
  const ui = new ChatUI({ root: $('messenger-body'), chat, calls, mode: 'split' });
  new CallsUI({ root: document.body, calls });
  new Attention({ chat, calls, button: $('notify-enable') }).mount();
  const pill = $('messenger-status');
  messenger.addEventListener('status', (ev) => {
    const { status, detail } = ev.detail;
    showPill(pill, status, PILL_WORDS);
    const banner = $('messenger-banner');
    banner.textContent = detail || '';
    banner.hidden = !detail;
    if (status === 'failed') sessionStorage.removeItem(CHAT_TOKEN_KEY);
  });
  messenger.addEventListener('joined', (ev) => {
    const p = ev.detail.data.participant || {};
    // The name people know; the identity only in the tooltip.
    const self = $('messenger-self');
    self.textContent = p.name || p.identity;
    self.title = p.identity;
  });
  calls.addEventListener('accepted', (ev) => {
    const { room, token: callToken } = ev.detail;
    // The chat token stays in sessionStorage, so "Back to your chats"
    // on the call's end page returns here.
    window.location.assign(`/r/${encodeURIComponent(room)}#token=${encodeURIComponent(callToken)}`);
  });
  window.addEventListener('pagehide', () => {
    chat.receipts.flushNow();
    messenger.leave();
  });
  messenger.start();
  return { messenger, chat, calls, ui, tap: chatTap };
}
