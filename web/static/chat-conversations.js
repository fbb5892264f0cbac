// Conversations is what this client holds: each conversation's state
// (chat-log.js) in memory and its copy in the ChatStore (one IndexedDB
// database per identity, or memory when IndexedDB is missing).

import { ChatStore } from './chat-store.js';
import { newConv, restoreConv, stored } from './chat-log.js';

export class Conversations {
  // makeStore(identity) returns an unopened ChatStore (tests pass one).
  constructor({ log, makeStore = (identity) => new ChatStore(identity) }) {
    this.log = log;
    this.makeStore = makeStore;
    this.map = new Map(); // id -> conversation
    this.store = null;
  }

  // open switches to identity's store and loads what it holds: every
  // conversation with its newest page of events (older ones stay in the
  // store until the user scrolls back).
  async open(identity, page) {
    if (this.store) this.store.close();
    this.store = this.makeStore(identity);
    await this.store.open();
    for (const saved of await this.store.conversations()) {
      const c = this.conv(saved.id);
      restoreConv(c, saved);
      for (const m of await this.store.messages(c.id, 0, page)) c.messages.set(m.seq, m);
      const seqs = [...c.messages.keys()];
      c.oldest = seqs.length ? Math.min(...seqs) : c.oldest;
      c.more = c.oldest > 1;
    }
  }

  get persistent() {
    return !!(this.store && this.store.persistent);
  }

  conv(id) {
    let c = this.map.get(id);
    if (!c) {
      c = newConv(id);
      this.map.set(id, c);
    }
    return c;
  }

  get(id) {
    return this.map.get(id);
  }

  has(id) {
    return this.map.has(id);
  }

  values() {
    return this.map.values();
  }

  // remove forgets a conversation the user is no longer in.
  remove(id) {
    this.map.delete(id);
    if (this.store) this.store.deleteConversation(id).catch((err) => this.log(`delete conversation: ${err}`));
  }

  // save writes c's description; a failure is logged, not thrown: the
  // next change writes it again.
  save(c) {
    if (!this.store) return Promise.resolve();
    return this.store.putConversation(stored(c)).catch((err) => this.log(`save conversation: ${err}`));
  }

  // putMessages stores events; it rejects when the write did not commit.
  async putMessages(list) {
    if (this.store && list.length) await this.store.putMessages(list);
  }

  // localPage reads up to limit events before beforeSeq from the store.
  async localPage(id, beforeSeq, limit) {
    return this.store ? this.store.messages(id, beforeSeq, limit) : [];
  }
}
