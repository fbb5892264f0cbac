// Calls holds IM-style call invitations (docs/protocol.md, Calls): the
// call this user placed and is waiting on, the calls ringing here, and how
// the last one ended. An accepted call emits 'accepted' ({room, token,
// peer}); the page then joins the call room with that fresh token.

import { Ringtone } from './ringtone.js';

const ENDED_TEXT = {
  declined: 'declined the call',
  busy: 'is in another call',
  offline: 'is offline',
  no_answer: 'did not answer',
  cancelled: 'The call was cancelled',
  answered_elsewhere: 'Answered on another device',
  declined_elsewhere: 'Declined on another device',
};

export class Calls extends EventTarget {
  constructor({ chat, log = console.debug.bind(console) }) {
    super();
    this.chat = chat;
    this.log = log;
    this.sig = null;
    this.outgoing = null; // {callId, to, name, state: 'placing'|'ringing'}
    this.incoming = new Map(); // callId -> {callId, caller, conversationId, kind, expires}
    this.lastEnded = null; // {callId, reason, text, at}
    this.tone = new Ringtone();
    // A tone the browser blocked (no gesture yet) is shown as such.
    this.tone.onChange = () => this.dispatchEvent(new Event('change'));
    this.accepted = null;
  }

  attach(link) {
    link.addEventListener('joined', (ev) => { this.sig = ev.detail.sig; });
    link.addEventListener('message', (ev) => this.onMessage(ev.detail));
  }

  changed() {
    this.updateTone();
    this.dispatchEvent(new Event('change'));
  }

  updateTone() {
    if (this.incoming.size) this.tone.start('incoming');
    else if (this.outgoing && this.outgoing.state === 'ringing') this.tone.start('outgoing');
    else this.tone.stop();
  }

  onMessage(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'ring':
        if (d.caller) this.chat.learnName(d.caller.identity, d.caller.name);
        this.incoming.set(d.callId, {
          callId: d.callId, caller: d.caller || {}, conversationId: d.conversationId, kind: d.kind,
          expires: Date.now() + (d.timeoutMs || 30000),
        });
        this.changed();
        break;
      case 'call_accepted':
        this.onAccepted(d);
        break;
      case 'call_ended':
        this.onEnded(d);
        break;
      default:
        break;
    }
  }

  onAccepted(d) {
    if (d.peer) this.chat.learnName(d.peer.identity, d.peer.name);
    this.incoming.delete(d.callId);
    this.outgoing = null;
    this.accepted = { callId: d.callId, room: d.room, peer: d.peer };
    this.changed();
    this.dispatchEvent(new CustomEvent('accepted', { detail: { room: d.room, token: d.token, peer: d.peer } }));
  }

  onEnded(d) {
    let who = '';
    if (this.outgoing && this.outgoing.callId === d.callId) {
      who = d.identity ? this.chat.nameOf(d.identity) : this.outgoing.name;
      // A group call goes on while someone still rings.
      if (!d.identity) this.outgoing = null;
    } else if (this.incoming.has(d.callId)) {
      who = this.chat.nameOf(this.incoming.get(d.callId).caller.identity);
      this.incoming.delete(d.callId);
    }
    const base = ENDED_TEXT[d.reason] || d.reason;
    let text = base;
    if (d.byMe) text = 'You cancelled the call';
    else if (d.reason === 'cancelled' && who) text = `${who} hung up`;
    else if (/^[a-z]/.test(base)) text = `${who || 'They'} ${base}`;
    this.lastEnded = { callId: d.callId, reason: d.reason, text, at: Date.now() };
    this.changed();
  }

  // ----- user actions -----

  // call rings one person (identity) or, with group ({id, title}), every
  // connected member of a group conversation.
  async call(identity, group = null) {
    if (!this.sig || !this.sig.isOpen) throw new Error('not connected');
    if (this.outgoing) throw new Error('already calling');
    this.outgoing = { callId: '', to: identity, name: group ? group.title : this.chat.nameOf(identity), state: 'placing' };
    this.lastEnded = null;
    this.changed();
    try {
      const reply = await this.sig.request('call', group ? { conversationId: group.id } : { to: identity });
      // call_ended for an offline or busy callee may already have come.
      if (this.outgoing && this.outgoing.to === identity && !this.outgoing.callId) {
        this.outgoing.callId = reply.data.callId;
        // With nobody ringing, call_ended (busy/offline) follows at once.
        this.outgoing.state = (reply.data.ringing || []).length ? 'ringing' : 'placing';
      }
    } catch (err) {
      this.outgoing = null;
      this.lastEnded = { callId: '', reason: err.code || 'error', text: `Call failed: ${err.message || err}`, at: Date.now() };
    }
    this.changed();
  }

  // cancel hangs up a call that still rings. The server answers with
  // call_ended (reason cancelled) as the reply to the request, which is
  // not pushed again, so the reply ends the call here.
  async cancel() {
    const o = this.outgoing;
    if (!o || !o.callId || !this.sig) return;
    try {
      const reply = await this.sig.request('call_cancel', { callId: o.callId });
      if (reply && reply.type === 'call_ended') this.onEnded({ ...reply.data, callId: o.callId, byMe: true });
    } catch (err) {
      this.log(`call_cancel: ${err.message}`);
      // The call is gone either way (not_found: it ended meanwhile).
      if (this.outgoing === o) {
        this.outgoing = null;
        this.changed();
      }
    }
  }

  async accept(callId) {
    if (!this.sig || !this.sig.isOpen) return;
    try {
      // The reply to our accept is call_accepted with our token.
      const reply = await this.sig.request('call_accept', { callId });
      this.onAccepted(reply.data);
    } catch (err) {
      this.incoming.delete(callId);
      this.lastEnded = { callId, reason: err.code || 'error', text: `Could not answer: ${err.message || err}`, at: Date.now() };
      this.changed();
    }
  }

  async decline(callId) {
    this.incoming.delete(callId);
    this.changed();
    if (!this.sig || !this.sig.isOpen) return;
    try {
      await this.sig.request('call_decline', { callId });
    } catch (err) {
      this.log(`call_decline: ${err.message || err}`);
    }
  }

  snapshot() {
    return {
      incoming: [...this.incoming.values()].map((c) => ({ callId: c.callId, caller: c.caller.identity, name: c.caller.name, kind: c.kind })),
      outgoing: this.outgoing ? { ...this.outgoing } : null,
      lastEnded: this.lastEnded,
      accepted: this.accepted,
      tone: this.tone.state,
    };
  }
}
