// ChatStore is the browser's local copy of the conversations: every
// stored event and each conversation's description, in IndexedDB, one
// database per identity so two accounts on one browser never mix. The
// client reports "delivered" only after a write here has committed.
//
// When IndexedDB is unavailable (private windows of some browsers) the
// store keeps everything in memory: chat still works, only nothing
// survives a reload.

const VERSION = 1;

function promisify(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error || new Error('transaction aborted'));
  });
}

export class ChatStore {
  constructor(identity) {
    this.name = `parley-chat:${identity}`;
    this.db = null;
    this.memory = null; // {messages: Map, conversations: Map, outbox: Map} when IndexedDB is missing
  }

  async open() {
    if (!globalThis.indexedDB) {
      this.useMemory();
      return;
    }
    try {
      const req = globalThis.indexedDB.open(this.name, VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore('messages', { keyPath: ['conversationId', 'seq'] });
        db.createObjectStore('conversations', { keyPath: 'id' });
        db.createObjectStore('outbox', { keyPath: 'clientMsgId' });
      };
      this.db = await promisify(req);
    } catch {
      this.useMemory();
    }
  }

  useMemory() {
    this.memory = { messages: new Map(), conversations: new Map(), outbox: new Map() };
  }

  get persistent() { return !!this.db; }

  // putMessages stores events; resolves once the transaction committed.
  async putMessages(list) {
    if (!list.length) return;
    if (this.memory) {
      for (const m of list) this.memory.messages.set(`${m.conversationId}|${m.seq}`, m);
      return;
    }
    const tx = this.db.transaction('messages', 'readwrite');
    const st = tx.objectStore('messages');
    for (const m of list) st.put(m);
    await done(tx);
  }

  // messages returns up to limit events of a conversation with seq below
  // beforeSeq (0: from the newest), in ascending order.
  async messages(conversationId, beforeSeq = 0, limit = 50) {
    if (this.memory) {
      const all = [...this.memory.messages.values()]
        .filter((m) => m.conversationId === conversationId && (!beforeSeq || m.seq < beforeSeq))
        .sort((a, b) => a.seq - b.seq);
      return all.slice(-limit);
    }
    const upper = beforeSeq ? beforeSeq - 1 : Number.MAX_SAFE_INTEGER;
    const range = IDBKeyRange.bound([conversationId, 0], [conversationId, upper]);
    const tx = this.db.transaction('messages', 'readonly');
    const out = [];
    await new Promise((resolve, reject) => {
      const req = tx.objectStore('messages').openCursor(range, 'prev');
      req.onsuccess = () => {
        const cur = req.result;
        if (!cur || out.length >= limit) { resolve(); return; }
        out.push(cur.value);
        cur.continue();
      };
      req.onerror = () => reject(req.error);
    });
    return out.reverse();
  }

  async putConversation(c) {
    if (this.memory) { this.memory.conversations.set(c.id, c); return; }
    const tx = this.db.transaction('conversations', 'readwrite');
    tx.objectStore('conversations').put(c);
    await done(tx);
  }

  async deleteConversation(id) {
    if (this.memory) {
      this.memory.conversations.delete(id);
      for (const [k, m] of this.memory.messages) if (m.conversationId === id) this.memory.messages.delete(k);
      return;
    }
    const tx = this.db.transaction(['conversations', 'messages'], 'readwrite');
    tx.objectStore('conversations').delete(id);
    tx.objectStore('messages').delete(IDBKeyRange.bound([id, 0], [id, Number.MAX_SAFE_INTEGER]));
    await done(tx);
  }

  async conversations() {
    if (this.memory) return [...this.memory.conversations.values()];
    const tx = this.db.transaction('conversations', 'readonly');
    return promisify(tx.objectStore('conversations').getAll());
  }

  // The outbox holds own messages not yet acknowledged, so a reload does
  // not lose them: they are retried with the same clientMsgId.
  async putOutbox(item) {
    if (this.memory) { this.memory.outbox.set(item.clientMsgId, item); return; }
    const tx = this.db.transaction('outbox', 'readwrite');
    tx.objectStore('outbox').put(item);
    await done(tx);
  }

  async deleteOutbox(clientMsgId) {
    if (this.memory) { this.memory.outbox.delete(clientMsgId); return; }
    const tx = this.db.transaction('outbox', 'readwrite');
    tx.objectStore('outbox').delete(clientMsgId);
    await done(tx);
  }

  async outbox() {
    if (this.memory) return [...this.memory.outbox.values()];
    const tx = this.db.transaction('outbox', 'readonly');
    return promisify(tx.objectStore('outbox').getAll());
  }

  close() {
    if (this.db) this.db.close();
    this.db = null;
  }
}
