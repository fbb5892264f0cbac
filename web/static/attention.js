// Attention is what reaches a user whose tab is in the background: the
// unread count in the tab title while the page is hidden, and, once the
// user allowed them with the "Enable notifications" button (never asked on
// load), a browser notification for each incoming call and for new
// messages. Clicking a notification brings the tab forward.

// unreadTitle is the tab title with n unread messages.
export function unreadTitle(base, n) {
  return n > 0 ? `(${n > 99 ? '99+' : n}) ${base}` : base;
}

export class Attention {
  // chat: the Chat; calls: the Calls or null (the call page has none);
  // button: the "Enable notifications" button.
  constructor({ chat, calls = null, button }) {
    this.chat = chat;
    this.calls = calls;
    this.button = button;
    this.base = document.title;
    this.unread = new Map(); // conversation id -> unread count last seen
    this.ringing = new Set(); // call ids already announced
    this.onChat = () => this.chatChanged();
    this.onCalls = () => this.callsChanged();
    this.onVisibility = () => this.renderTitle();
  }

  mount() {
    this.chat.addEventListener('change', this.onChat);
    if (this.calls) this.calls.addEventListener('change', this.onCalls);
    document.addEventListener('visibilitychange', this.onVisibility);
    this.button.onclick = () => this.enable();
    this.renderButton();
    for (const c of this.chat.convs.values()) this.unread.set(c.id, c.unread || 0);
  }

  unmount() {
    this.chat.removeEventListener('change', this.onChat);
    if (this.calls) this.calls.removeEventListener('change', this.onCalls);
    document.removeEventListener('visibilitychange', this.onVisibility);
    document.title = this.base;
  }

  get hidden() {
    return document.visibilityState === 'hidden';
  }

  allowed() {
    return typeof Notification !== 'undefined' && Notification.permission === 'granted';
  }

  renderButton() {
    // Shown while the browser would still ask; gone once allowed or refused.
    this.button.hidden = typeof Notification === 'undefined' || Notification.permission !== 'default';
  }

  async enable() {
    try {
      await Notification.requestPermission();
    } catch {
      // an old callback-style browser or a refusal: the button stays
    }
    this.renderButton();
  }

  renderTitle() {
    let n = 0;
    for (const c of this.chat.convs.values()) n += c.unread || 0;
    document.title = this.hidden ? unreadTitle(this.base, n) : this.base;
  }

  chatChanged() {
    for (const c of this.chat.convs.values()) {
      const was = this.unread.get(c.id) || 0;
      const now = c.unread || 0;
      this.unread.set(c.id, now);
      if (now > was && this.hidden) {
        this.notify(this.chat.title(c), now === 1 ? 'New message' : `${now} new messages`, `conv-${c.id}`);
      }
    }
    this.renderTitle();
  }

  callsChanged() {
    for (const c of this.calls.incoming.values()) {
      if (this.ringing.has(c.callId)) continue;
      this.ringing.add(c.callId);
      if (this.hidden) {
        const who = c.caller.name || c.caller.identity;
        this.notify(`${who} is calling`, c.kind === 'group' ? 'Group call: open Parley to answer' : 'Open Parley to answer', `call-${c.callId}`);
      }
    }
  }

  notify(title, body, tag) {
    if (!this.allowed()) return;
    try {
      const n = new Notification(title, { body, tag, icon: '/assets/icon.svg' });
      n.onclick = () => {
        window.focus();
        n.close();
      };
    } catch {
      // Some browsers only notify from a service worker; the title still counts.
    }
  }
}
