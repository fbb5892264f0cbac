// Outbox sends the user's own messages: each gets a clientMsgId once
// (crypto.randomUUID) and keeps it across every retry, on this or a later
// connection, so the server stores it exactly once. Messages go out one at
// a time in the order they were written, because the server numbers one
// connection's messages in arrival order. A message shows "pending" until
// its chat_ack and "failed" once the queue made no progress for
// FAIL_AFTER_MS (no connection, no ack) or the server refused it; the user
// can retry a failed one.

import { SignalingError, backoff } from './signaling.js';

export const FAIL_AFTER_MS = 30000;
const SEND_TIMEOUT_MS = 8000;
// Refusals that a retry cannot fix.
export const PERMANENT = new Set(['bad_request', 'too_large', 'forbidden', 'not_found', 'conflict', 'unavailable']);

export class Outbox {
  // channel: the Channel to send on; onAck(item, ack): the message is
  // stored (the chat shows it as an event from then on); onChange():
  // something shown changed. The store comes with restore().
  constructor({ channel, onAck, onChange, log }) {
    this.channel = channel;
    this.onAck = onAck;
    this.onChange = onChange;
    this.log = log;
    this.store = null;
    this.items = []; // {clientMsgId, conversationId, text, createdAt, firstTry, attempts, status, error}
    this.busy = false;
    this.timer = 0;
    this.progress = Date.now(); // last add or ack: waiting behind others is not failing
    this.sweeper = 0;
  }

  deadline(it) {
    return Math.max(it.firstTry, this.progress) + FAIL_AFTER_MS;
  }

  // sweep fails pending messages whose deadline passed while nothing
  // could be sent (offline); it runs while anything is pending.
  sweep() {
    const now = Date.now();
    let pending = false;
    for (const it of this.items) {
      if (it.status !== 'pending') continue;
      if (now > this.deadline(it) && !(this.busy && it === this.head())) this.fail(it, 'not sent: no connection to the server');
      else pending = true;
    }
    if (pending && !this.sweeper) {
      this.sweeper = setTimeout(() => { this.sweeper = 0; this.sweep(); }, 1000);
    }
  }

  head() {
    return this.items.find((x) => x.status === 'pending');
  }

  // restore takes the identity's store and the messages it kept.
  async restore(store) {
    this.store = store;
    const saved = await store.outbox();
    saved.sort((a, b) => a.createdAt - b.createdAt);
    for (const it of saved) {
      // A reload gives pending messages a fresh window; they keep their ids.
      if (!this.items.some((x) => x.clientMsgId === it.clientMsgId)) this.items.push({ ...it, attempts: 0, firstTry: Date.now() });
    }
    this.sweep();
  }

  async add(conversationId, text) {
    const now = Date.now();
    const item = { clientMsgId: crypto.randomUUID(), conversationId, text, createdAt: now, firstTry: now, attempts: 0, status: 'pending', error: '' };
    this.items.push(item);
    this.progress = now;
    this.sweep();
    await this.save(item);
    this.onChange();
    this.kick();
    return item;
  }

  async save(item) {
    if (!this.store) return; // not restored yet: kept in memory only
    const { clientMsgId, conversationId, text, createdAt, firstTry, status, error } = item;
    try {
      await this.store.putOutbox({ clientMsgId, conversationId, text, createdAt, firstTry, status, error });
    } catch (err) {
      this.log(`outbox save: ${err}`);
    }
  }

  forConversation(id) {
    return this.items.filter((x) => x.conversationId === id);
  }

  // settled removes an item once its message is stored (ack, or the
  // message reached us from the server by another path).
  settled(clientMsgId) {
    const i = this.items.findIndex((x) => x.clientMsgId === clientMsgId);
    if (i < 0) return false;
    this.items.splice(i, 1);
    this.progress = Date.now();
    if (this.store) this.store.deleteOutbox(clientMsgId).catch((err) => this.log(`outbox delete: ${err}`));
    return true;
  }

  retry(clientMsgId) {
    const it = this.items.find((x) => x.clientMsgId === clientMsgId);
    if (!it || it.status !== 'failed') return;
    it.status = 'pending';
    it.error = '';
    it.firstTry = Date.now();
    it.attempts = 0;
    this.progress = Date.now();
    this.save(it);
    this.sweep();
    this.onChange();
    this.kick();
  }

  // kick sends the oldest pending message unless one is in flight or a
  // retry is scheduled.
  kick() {
    if (this.busy || this.timer) return;
    const it = this.head();
    if (!it) return;
    if (!this.channel.open) return; // the next join kicks again
    if (Date.now() > this.deadline(it)) {
      this.fail(it, 'not sent: no connection to the server');
      this.kick();
      return;
    }
    this.busy = true;
    this.send(it).finally(() => {
      this.busy = false;
      this.kick();
    });
  }

  async send(it) {
    try {
      const reply = await this.channel.request('chat_send', {
        conversationId: it.conversationId, clientMsgId: it.clientMsgId, text: it.text,
      }, SEND_TIMEOUT_MS);
      await this.onAck(it, reply.data);
    } catch (err) {
      if (err instanceof SignalingError && PERMANENT.has(err.code)) {
        this.fail(it, err.message);
        return;
      }
      if (Date.now() > this.deadline(it)) {
        this.fail(it, err.message || String(err));
        return;
      }
      const delay = backoff(it.attempts++);
      this.log(`chat_send ${it.clientMsgId}: ${err.message || err}; retry in ${delay} ms`);
      this.timer = setTimeout(() => {
        this.timer = 0;
        this.kick();
      }, delay);
    }
  }

  fail(it, message) {
    it.status = 'failed';
    it.error = message;
    this.save(it);
    this.onChange();
  }

  stop() {
    clearTimeout(this.timer);
    clearTimeout(this.sweeper);
    this.timer = 0;
    this.sweeper = 0;
  }
}
