// CallsUI shows call invitations: the incoming-call dialog (accept or
// decline, with the ring tone playing), the "Calling …" dialog with a
// cancel button while the other side rings, and a short notice when a
// call ends without being answered.

import { el } from './dom.js';
import { trapFocus } from './focus-trap.js';

const NOTICE_MS = 8000;

export class CallsUI {
  constructor({ root, calls }) {
    this.calls = calls;
    this.incoming = el('div', 'call-dialog card', { testid: 'incoming-call', role: 'alertdialog', 'aria-label': 'Incoming call' });
    this.inTitle = el('div', 'call-who', { testid: 'incoming-caller' });
    this.inSub = el('div', 'muted', { text: 'is calling you' });
    const row = el('div', 'call-actions');
    this.declineBtn = el('button', 'round danger-btn', { testid: 'call-decline', type: 'button', text: 'Decline' });
    this.acceptBtn = el('button', 'round ok-btn', { testid: 'call-accept', type: 'button', text: 'Accept' });
    row.append(this.declineBtn, this.acceptBtn);
    // Browsers keep sound off until the user interacts with the page.
    this.ringHint = el('button', 'small ring-hint', { testid: 'ring-enable', type: 'button', text: 'Click to enable ringing' });
    this.ringHint.addEventListener('click', () => calls.tone.unblock());
    this.incoming.append(el('span', 'ico ico-phone ring-ico'), this.inTitle, this.inSub, row, this.ringHint);

    this.outgoing = el('div', 'call-dialog card', { testid: 'outgoing-call', role: 'dialog', 'aria-label': 'Calling' });
    this.outTitle = el('div', 'call-who', { testid: 'outgoing-callee' });
    this.outSub = el('div', 'muted', { testid: 'outgoing-state' });
    const row2 = el('div', 'call-actions');
    this.cancelBtn = el('button', 'round danger-btn', { testid: 'call-cancel', type: 'button', text: 'Cancel' });
    row2.append(this.cancelBtn);
    this.outgoing.append(el('span', 'ico ico-phone'), this.outTitle, this.outSub, row2);

    this.notice = el('div', 'call-notice', { testid: 'call-notice', role: 'status' });
    this.layer = el('div', 'call-layer');
    this.layer.append(this.incoming, this.outgoing, this.notice);
    root.append(this.layer);

    this.acceptBtn.addEventListener('click', () => {
      const c = this.first();
      if (c) {
        this.acceptBtn.disabled = true;
        calls.accept(c.callId);
      }
    });
    this.declineBtn.addEventListener('click', () => { const c = this.first(); if (c) calls.decline(c.callId); });
    this.cancelBtn.addEventListener('click', () => calls.cancel());
    calls.addEventListener('change', () => this.render());
    document.addEventListener('pointerdown', () => calls.tone.unblock());
    this.noticeTimer = 0;
    this.render();
  }

  first() {
    return this.calls.incoming.values().next().value || null;
  }

  render() {
    const calls = this.calls;
    const c = this.first();
    this.incoming.hidden = !c;
    if (c) {
      this.inTitle.textContent = c.caller.name || c.caller.identity;
      this.inSub.textContent = c.kind === 'group' ? 'is calling the group' : 'is calling you';
      this.incoming.dataset.callId = c.callId;
    } else {
      this.acceptBtn.disabled = false;
    }
    this.ringHint.hidden = !c || calls.tone.state !== 'blocked';
    const o = calls.outgoing;
    this.outgoing.hidden = !o || !!c;
    if (o) {
      this.outTitle.textContent = o.name;
      this.outSub.textContent = o.state === 'ringing' ? 'Ringing…' : 'Calling…';
      this.cancelBtn.disabled = !o.callId;
    }
    const e = calls.lastEnded;
    const fresh = e && Date.now() - e.at < NOTICE_MS;
    this.notice.hidden = !fresh;
    if (fresh) {
      this.notice.textContent = e.text;
      this.notice.dataset.reason = e.reason;
      clearTimeout(this.noticeTimer);
      this.noticeTimer = setTimeout(() => this.render(), NOTICE_MS - (Date.now() - e.at) + 10);
    }
    this.layer.hidden = this.incoming.hidden && this.outgoing.hidden && this.notice.hidden;
    // A shown call dialog holds the keyboard; closing it gives focus back.
    const dialog = !this.incoming.hidden ? this.incoming : !this.outgoing.hidden ? this.outgoing : null;
    if (dialog !== this.trapped) {
      if (this.release) this.release();
      this.release = dialog ? trapFocus(dialog, dialog === this.incoming ? this.acceptBtn : this.cancelBtn) : null;
      this.trapped = dialog;
    }
    this.layer.classList.toggle('modal', !this.incoming.hidden || !this.outgoing.hidden);
  }
}
