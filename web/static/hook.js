// installHook sets `window.parley`, the page's read-only diagnostics
// (web/README.md, "Test hook"): copies of the call and chat state, WebRTC
// stats and the selected ICE candidate pairs. With `?debug` it also has
// `debug`, the fault simulations of debug.js. app: the App of app.js.

import { dropConnection, restartIce } from './debug.js';

export function installHook(app) {
  const hook = {
    state: () => (app.meeting ? app.meeting.call.state()
      : { status: app.lastEnd ? app.lastEnd.status : 'idle', message: app.lastEnd ? app.lastEnd.message : '', participants: [], remoteTracks: [] }),
    stats: () => (app.meeting ? app.meeting.call.stats() : Promise.resolve([])),
    // outbound: one entry per encoding this page sends (a simulcast
    // camera has one per rid).
    outbound: () => (app.meeting ? app.meeting.call.outbound() : Promise.resolve([])),
    // transport: the selected ICE candidate pair of each PeerConnection.
    transport: () => (app.meeting ? app.meeting.call.transport() : Promise.resolve({})),
    // chat: conversations, messages (seq, status), unread counts, presence,
    // and on /chat the call invitations (ringing state, ring tone).
    chat: () => chatState(app),
  };
  if (app.debug) {
    hook.debug = Object.freeze({
      dropConnection: () => dropConnection(app.link()),
      restartIce: () => restartIce(app.meeting && app.meeting.call),
      // dropChatPushes(n) loses the next n pushed chat messages.
      dropChatPushes: (n) => {
        const tap = app.chatTap();
        if (tap) tap.dropPushes = Math.max(0, Number(n) || 0);
      },
    });
  }
  window.parley = Object.freeze(hook);
}

function chatState(app) {
  const view = app.meeting || app.chatPage;
  if (!view) return null;
  const link = app.link();
  const tap = app.chatTap();
  return {
    ...view.chat.snapshot(),
    ...(tap ? { gapFills: tap.gapFills } : {}),
    link: { status: link.status, reconnects: link.reconnects },
    calls: app.chatPage ? app.chatPage.calls.snapshot() : null,
  };
}
