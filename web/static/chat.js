// Chat is the client side of Parley's messaging protocol (docs/protocol.md,
// "Chat, presence and calls"): conversations, the per-conversation event
// log ordered by seq, gap refill, catch-up after reconnect, scroll-back,
// receipts, typing and presence. It rides on a link (a Call or a
// Messenger) that owns the WebSocket and emits 'joined' and 'message'.
//
// Every conversation keeps `held`: the highest seq up to which this client
// holds every event without a gap (since the oldest one it loaded). A
// pushed event beyond held+1 reveals a gap, filled with chat_range; after
// a reconnect chat_sync names `held` per conversation and returns what is
// missing.

import { ChatStore } from './chat-store.js';
import { Outbox, PERMANENT } from './chat-outbox.js';
import { SignalingError, backoff } from './signaling.js';
import { Receipts } from './chat-receipts.js';

export const PAGE = 30; // events per history page
const SYNC_LIMIT = 100;
const MAX_RANGE_PAGES = 20;
const PRELOAD_CONVERSATIONS = 20; // new conversations whose latest page loads at once
const TYPING_SEND_MS = 3000;
const TYPING_SHOW_MS = 6000;
const CHANGE_ATTEMPTS = 5; // an edit or delete is retried this often before it is reported failed
export const VISIBLE_KINDS = new Set(['text', 'call_missed', 'call_declined', 'system']);
const PERSISTED = ['id', 'kind', 'peer', 'room', 'title', 'lastSeq', 'held', 'delivered', 'read', 'unread', 'lastActivity', 'syncSeq', 'peerMarks', 'oldest', 'more'];

function newConv(id) {
  return {
    id, kind: '', peer: '', room: '', title: '', lastSeq: 0, held: 0, delivered: 0, read: 0, unread: 0,
    lastActivity: 0, syncSeq: 0, peerMarks: {}, oldest: 0, more: true,
    messages: new Map(), typing: new Map(), loadingOlder: false, filling: false,
  };
}

export class Chat extends EventTarget {
  constructor({ log = console.debug.bind(console) } = {}) {
    super();
    this.log = log;
    this.sig = null;
    this.self = null; // {identity, name}
    this.store = null;
    this.convs = new Map();
    this.presence = new Map(); // identity -> online | in_call | offline
    this.names = new Map(); // identity -> display name
    this.roomConversationId = '';
    this.visibleId = ''; // the conversation the user is looking at
    this.status = 'offline';
    this.syncs = 0;
    this.outbox = new Outbox(this);
    this.receipts = new Receipts(this);
    this.lastTyping = new Map(); // conversationId -> ms of our last typing send
    this.pendingChange = false;
    // Pushes wait for the local store of the identity to be open, so
    // none is applied to a half-loaded state (the order is kept).
    this.ready = Promise.resolve();
  }

  // changed tells the UI to re-render, at most once per task.
  changed() {
    if (this.pendingChange) return;
    this.pendingChange = true;
    queueMicrotask(() => {
      this.pendingChange = false;
      this.dispatchEvent(new Event('change'));
    });
  }

  // attach follows a link: each (re)join brings a fresh Signaling.
  attach(link) {
    link.addEventListener('joined', (ev) => this.onJoined(ev.detail.sig, ev.detail.data));
    link.addEventListener('message', (ev) => {
      this.ready.then(() => this.onMessage(ev.detail));
    });
  }

  async onJoined(sig, data) {
    this.sig = sig;
    sig.addEventListener('close', () => {
      if (this.sig !== sig) return;
      this.status = 'offline';
      this.changed();
    });
    const p = data.participant || {};
    if (!this.self || this.self.identity !== p.identity) {
      this.self = { identity: p.identity, name: p.name };
      this.ready = this.openStore(p.identity).catch((err) => this.log(`chat store: ${err}`));
    }
    await this.ready;
    this.names.set(p.identity, p.name);
    if (!data.grants || !data.grants.chat) {
      this.status = 'disabled';
      this.changed();
      return;
    }
    if (data.conversationId) {
      this.roomConversationId = data.conversationId;
      const c = this.conv(data.conversationId);
      c.kind = 'room';
      c.room = data.room;
    }
    this.status = 'syncing';
    this.changed();
    try {
      await this.sync(sig);
    } catch (err) {
      this.log(`chat_sync: ${err.message || err}`);
      if (this.sig !== sig) return;
    }
    if (this.sig !== sig || !sig.isOpen) return;
    this.status = 'online';
    this.changed();
    this.outbox.kick();
    this.receipts.schedule();
    if (this.visibleId) this.markRead(this.visibleId);
  }

  async openStore(identity) {
    if (this.store) this.store.close();
    this.store = new ChatStore(identity);
    await this.store.open();
    for (const saved of await this.store.conversations()) {
      const c = this.conv(saved.id);
      for (const k of PERSISTED) if (saved[k] !== undefined) c[k] = saved[k];
      for (const m of await this.store.messages(c.id, 0, PAGE)) c.messages.set(m.seq, m);
      // Older ones stay in IndexedDB until the user scrolls back.
      const seqs = [...c.messages.keys()];
      c.oldest = seqs.length ? Math.min(...seqs) : c.oldest;
      c.more = c.oldest > 1;
    }
    await this.outbox.restore(this.store);
    this.changed();
  }

  conv(id) {
    let c = this.convs.get(id);
    if (!c) {
      c = newConv(id);
      this.convs.set(id, c);
    }
    return c;
  }

  // applyView merges the server's description of a conversation.
  applyView(v) {
    const c = this.conv(v.id);
    c.kind = v.kind;
    c.peer = v.peer || '';
    c.room = v.room || c.room;
    c.title = v.title || '';
    c.lastSeq = Math.max(c.lastSeq, v.lastSeq || 0);
    c.delivered = Math.max(c.delivered, v.delivered || 0);
    c.read = Math.max(c.read, v.read || 0);
    c.lastActivity = Math.max(c.lastActivity, v.lastActivity || 0);
    return c;
  }

  saveConv(c) {
    if (!this.store) return Promise.resolve();
    const out = {};
    for (const k of PERSISTED) out[k] = c[k];
    return this.store.putConversation(out).catch((err) => this.log(`save conversation: ${err}`));
  }

  // ----- receive path -----

  async sync(sig) {
    const lastSeqs = {};
    for (const c of this.convs.values()) if (c.held > 0) lastSeqs[c.id] = c.held;
    const reply = await sig.request('chat_sync', { lastSeqs, limit: SYNC_LIMIT });
    if (this.sig !== sig) return;
    this.syncs++;
    const d = reply.data;
    for (const id of d.gone || []) {
      this.convs.delete(id);
      if (this.store) this.store.deleteConversation(id).catch(() => {});
    }
    const fresh = [];
    for (const entry of d.conversations || []) {
      const c = this.applyView(entry.conversation);
      // The server's unread count covers everything up to its lastSeq;
      // events pushed after this sync are counted here.
      c.unread = entry.conversation.unread || 0;
      c.syncSeq = c.lastSeq;
      await this.ingest(c, entry.messages || []);
      if (entry.more) await this.fillForward(c);
      if (c.held === 0 && c.lastSeq > 0) fresh.push(c);
      else this.saveConv(c);
    }
    for (const c of fresh.slice(0, PRELOAD_CONVERSATIONS)) await this.loadLatest(c);
    this.changed();
  }

  // ingest stores events (ascending or not) and advances held; counts
  // new events from others as unread; then acks delivery after the
  // IndexedDB write committed.
  async ingest(c, list) {
    const me = this.self && this.self.identity;
    const fresh = [];
    for (const m of list) {
      if (m.conversationId !== c.id) continue;
      if (m.sender && m.sender.name) this.names.set(m.sender.identity, m.sender.name);
      if (c.messages.has(m.seq)) continue;
      c.messages.set(m.seq, { ...m });
      fresh.push(m);
      if (m.sender && m.sender.identity === me && this.outbox.settled(m.clientMsgId)) {
        // Stored by an earlier attempt whose ack we never saw.
      }
      if (m.sender && m.sender.identity !== me && VISIBLE_KINDS.has(m.kind) && m.seq > c.syncSeq && m.seq > c.read) {
        c.unread++;
      }
      if (m.sender) c.typing.delete(m.sender.identity);
      c.lastSeq = Math.max(c.lastSeq, m.seq);
      c.lastActivity = Math.max(c.lastActivity, m.createdAt || 0);
    }
    if (!c.oldest && fresh.length) c.oldest = Math.min(...fresh.map((m) => m.seq));
    if (c.oldest === 1) c.more = false; // nothing before the first event
    while (c.messages.has(c.held + 1)) c.held++;
    if (c.held === 0 && c.oldest > 0) {
      // The first page loaded may start anywhere: contiguity starts there.
      c.held = c.oldest;
      while (c.messages.has(c.held + 1)) c.held++;
    }
    this.foldEdits(c, fresh);
    if (this.store && fresh.length) {
      try {
        await this.store.putMessages(fresh);
      } catch (err) {
        this.log(`store messages: ${err}`);
        this.changed();
        return; // not stored: no delivery receipt
      }
    }
    await this.saveConv(c);
    if (c.held > c.delivered) this.receipts.queue(c.id, { delivered: c.held });
    if (this.visibleId === c.id) this.markRead(c.id);
    this.changed();
  }

  // foldEdits applies edit and delete events to their targets.
  foldEdits(c, list) {
    for (const m of list) {
      if (m.kind !== 'edit' && m.kind !== 'delete') continue;
      const t = c.messages.get(m.targetSeq);
      if (!t || t.deleted) continue;
      if (m.kind === 'delete') {
        t.deleted = true;
        t.text = '';
      } else if (t.sender && m.sender && t.sender.identity === m.sender.identity) {
        t.text = m.text;
        t.edited = true;
      }
    }
  }

  onPushedMessage(m) {
    const known = this.convs.has(m.conversationId);
    const c = this.conv(m.conversationId);
    if (!known) this.log(`message for a conversation not synced yet: ${m.conversationId}`);
    const gap = c.held > 0 && m.seq > c.held + 1;
    this.ingest(c, [m]).then(() => {
      if (gap || (c.held === 0 && m.seq > 1)) this.fillGap(c);
    });
  }

  // fillGap fetches what lies between held and the newest event.
  async fillGap(c) {
    if (c.filling) return;
    c.filling = true;
    try {
      if (c.held === 0) await this.loadLatest(c);
      else await this.fillForward(c);
    } finally {
      c.filling = false;
    }
  }

  async fillForward(c) {
    const sig = this.sig;
    for (let i = 0; i < MAX_RANGE_PAGES && sig && sig.isOpen; i++) {
      const reply = await sig.request('chat_range', { conversationId: c.id, afterSeq: c.held, limit: SYNC_LIMIT });
      const before = c.held;
      await this.ingest(c, reply.data.messages || []);
      if (!reply.data.more || c.held === before) return;
    }
  }

  // loadLatest reads the newest page of a conversation this client has
  // never held anything of.
  async loadLatest(c) {
    const sig = this.sig;
    if (!sig || !sig.isOpen) return;
    const reply = await sig.request('chat_history', { conversationId: c.id, limit: PAGE });
    const list = (reply.data.messages || []).slice().reverse();
    if (list.length) c.oldest = c.oldest ? Math.min(c.oldest, list[0].seq) : list[0].seq;
    c.more = !!reply.data.more;
    await this.ingest(c, list);
  }

  // loadOlder scrolls back one page: from IndexedDB when it has the page,
  // else from the server (chat_history).
  async loadOlder(id) {
    const c = this.convs.get(id);
    if (!c || c.loadingOlder || !c.more || !c.oldest) return;
    c.loadingOlder = true;
    this.changed();
    try {
      let list = this.store ? await this.store.messages(id, c.oldest, PAGE) : [];
      const contiguous = list.length && list[list.length - 1].seq === c.oldest - 1 &&
        list.every((m, i) => i === 0 || m.seq === list[i - 1].seq + 1);
      let more;
      if (contiguous && list.length === Math.min(PAGE, c.oldest - 1)) {
        more = list[0].seq > 1;
      } else if (this.sig && this.sig.isOpen) {
        const reply = await this.sig.request('chat_history', { conversationId: id, beforeSeq: c.oldest, limit: PAGE });
        list = (reply.data.messages || []).slice().reverse();
        more = !!reply.data.more;
      } else {
        return;
      }
      for (const m of list) {
        if (c.messages.has(m.seq)) continue;
        c.messages.set(m.seq, { ...m });
        if (m.sender && m.sender.name) this.names.set(m.sender.identity, m.sender.name);
      }
      if (list.length) c.oldest = Math.min(c.oldest, list[0].seq);
      c.more = more && c.oldest > 1;
      this.foldEdits(c, [...c.messages.values()].filter((m) => m.kind === 'edit' || m.kind === 'delete'));
      if (this.store) await this.store.putMessages(list).catch(() => {});
      await this.saveConv(c);
    } catch (err) {
      this.log(`load older: ${err.message || err}`);
    } finally {
      c.loadingOlder = false;
      this.changed();
    }
  }

  onMessage(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'message':
        this.onPushedMessage(d);
        break;
      case 'conversation':
        if (d.conversation) {
          const c = this.applyView(d.conversation);
          if (!c.syncSeq) c.syncSeq = c.lastSeq;
          this.saveConv(c);
          if (c.lastSeq > c.held) this.fillGap(c);
          this.changed();
        }
        break;
      case 'chat_receipt':
        this.onReceipt(d);
        break;
      case 'typing':
        this.onTyping(d);
        break;
      case 'presence':
        this.presence.set(d.identity, d.status);
        this.changed();
        break;
      default:
        break;
    }
  }

  onReceipt(d) {
    const c = this.convs.get(d.conversationId);
    if (!c) return;
    if (this.self && d.identity === this.self.identity) {
      this.onOwnMarks(d);
      return;
    }
    const pm = c.peerMarks[d.identity] || { delivered: 0, read: 0 };
    pm.delivered = Math.max(pm.delivered, d.delivered || 0, d.read || 0);
    pm.read = Math.max(pm.read, d.read || 0);
    c.peerMarks[d.identity] = pm;
    this.saveConv(c);
    this.changed();
  }

  // onOwnMarks applies this identity's watermarks (our receipt's reply,
  // or another of our devices that read the conversation).
  onOwnMarks(d) {
    const c = this.convs.get(d.conversationId);
    if (!c) return;
    c.delivered = Math.max(c.delivered, d.delivered || 0);
    if ((d.read || 0) > c.read) {
      c.read = d.read;
      const me = this.self && this.self.identity;
      c.unread = [...c.messages.values()].filter((m) => m.seq > c.read && m.sender && m.sender.identity !== me && VISIBLE_KINDS.has(m.kind)).length;
    }
    this.saveConv(c);
    this.changed();
  }

  onTyping(d) {
    const c = this.convs.get(d.conversationId);
    if (!c || (this.self && d.identity === this.self.identity)) return;
    if (d.name) this.names.set(d.identity, d.name);
    const until = Date.now() + TYPING_SHOW_MS;
    c.typing.set(d.identity, { name: d.name || d.identity, until });
    setTimeout(() => {
      const t = c.typing.get(d.identity);
      if (t && t.until <= Date.now()) {
        c.typing.delete(d.identity);
        this.changed();
      }
    }, TYPING_SHOW_MS + 50);
    this.changed();
  }

  // ----- user actions -----

  send(id, text) {
    const t = text.trim();
    if (!t) return null;
    return this.outbox.add(id, t);
  }

  retry(clientMsgId) { this.outbox.retry(clientMsgId); }

  // edit and remove change one of the user's own stored messages. The
  // change is an event with a seq of its own: it shows once the server
  // stored it (its ack), and retries reuse one clientMsgId so it is
  // stored once. They resolve with the ack or reject with the reason.
  edit(id, targetSeq, text) {
    const t = text.trim();
    if (!t) return Promise.reject(new Error('an edit cannot be empty; delete the message instead'));
    return this.change('chat_edit', 'edit', id, { targetSeq, text: t });
  }

  remove(id, targetSeq) {
    return this.change('chat_delete', 'delete', id, { targetSeq });
  }

  async change(type, kind, id, body) {
    const clientMsgId = crypto.randomUUID();
    let lastErr = null;
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoff(attempt - 1)));
      if (!this.sig || !this.sig.isOpen) {
        lastErr = new Error('no connection to the server');
        continue;
      }
      try {
        const reply = await this.sig.request(type, { conversationId: id, clientMsgId, ...body }, 8000);
        await this.ingestOwn(reply.data, { kind, text: body.text || '', targetSeq: body.targetSeq });
        return reply.data;
      } catch (err) {
        if (err instanceof SignalingError && PERMANENT.has(err.code)) throw err;
        lastErr = err;
      }
    }
    throw lastErr || new Error(`${type} failed`);
  }

  // onAck is the outbox's hook once the server stored a message.
  async onAck(item, ack) {
    this.outbox.settled(item.clientMsgId);
    await this.ingestOwn(ack, { kind: 'text', text: item.text });
  }

  // ingestOwn stores an event of the user's own once its chat_ack came
  // (the server pushes it to everyone but this connection); fields are
  // what the request said (kind, text, targetSeq).
  async ingestOwn(ack, fields) {
    const c = this.conv(ack.conversationId);
    const me = this.self || {};
    const gap = c.held > 0 && ack.seq > c.held + 1;
    await this.ingest(c, [{
      conversationId: ack.conversationId, seq: ack.seq, serverId: ack.serverId, clientMsgId: ack.clientMsgId,
      sender: { identity: me.identity, name: me.name }, createdAt: ack.createdAt, ...fields,
    }]);
    if (gap) this.fillGap(c);
  }

  // typing tells the others, at most every TYPING_SEND_MS per conversation.
  typing(id) {
    const now = Date.now();
    if (!this.sig || !this.sig.isOpen || now - (this.lastTyping.get(id) || 0) < TYPING_SEND_MS) return;
    this.lastTyping.set(id, now);
    this.sig.send('typing', { conversationId: id });
  }

  // setVisible records which conversation the user is looking at; it is
  // read up to what we hold whenever the page is visible.
  setVisible(id) {
    this.visibleId = id || '';
    if (id) this.markRead(id);
    this.changed();
  }

  markRead(id) {
    const c = this.convs.get(id);
    if (!c || document.visibilityState !== 'visible') return;
    if (c.unread) {
      c.unread = 0;
      this.saveConv(c);
      this.changed();
    }
    if (c.held > c.read) this.receipts.queue(id, { delivered: c.held, read: c.held });
  }

  openDirect(identity) {
    return this.openConversation('chat_direct', { identity });
  }

  // createGroup makes a group conversation with the given members (the
  // user is added by the server) and returns its id.
  createGroup(title, members) {
    return this.openConversation('chat_group', { title, members });
  }

  // openConversation asks for a conversation (chat_direct, chat_group),
  // keeps its description and fetches what it already holds.
  async openConversation(type, body) {
    if (!this.sig || !this.sig.isOpen) throw new Error('not connected');
    const reply = await this.sig.request(type, body);
    const c = this.applyView(reply.data.conversation);
    if (!c.syncSeq) c.syncSeq = c.lastSeq;
    await this.saveConv(c);
    if (c.lastSeq > c.held) await this.fillGap(c);
    this.changed();
    return c.id;
  }

  // ----- views -----

  nameOf(identity) {
    return this.names.get(identity) || identity;
  }

  title(c) {
    if (c.kind === 'room') return c.room && c.room.startsWith('call-') ? 'Call chat' : `Room ${c.room || ''}`.trim();
    if (c.kind === 'direct') return this.nameOf(c.peer);
    return c.title || 'Group';
  }

  // statusOf is the mark on an own message: delivered/read by the other
  // members when the server tells us (direct and group conversations).
  statusOf(c, m) {
    let delivered = 0;
    let read = 0;
    for (const pm of Object.values(c.peerMarks)) {
      delivered = Math.max(delivered, pm.delivered);
      read = Math.max(read, pm.read);
    }
    if (read >= m.seq) return 'read';
    if (delivered >= m.seq) return 'delivered';
    return 'sent';
  }

  // timeline lists what a conversation shows: stored events in seq order
  // (edits and deletes folded into their targets), then own messages not
  // yet acknowledged.
  timeline(id) {
    const c = this.convs.get(id);
    if (!c) return [];
    const me = this.self && this.self.identity;
    const out = [];
    for (const m of [...c.messages.values()].sort((a, b) => a.seq - b.seq)) {
      if (!VISIBLE_KINDS.has(m.kind)) continue;
      const own = !!m.sender && m.sender.identity === me;
      out.push({
        key: `s${m.seq}`, seq: m.seq, clientMsgId: m.clientMsgId, kind: m.kind, text: m.text || '',
        sender: m.sender ? m.sender.identity : '', senderName: m.sender ? m.sender.name || m.sender.identity : '',
        own, deleted: !!m.deleted, edited: !!m.edited, createdAt: m.createdAt,
        status: own && m.kind === 'text' ? this.statusOf(c, m) : '',
      });
    }
    for (const it of this.outbox.forConversation(id)) {
      out.push({
        key: `c${it.clientMsgId}`, seq: 0, clientMsgId: it.clientMsgId, kind: 'text', text: it.text,
        sender: me, senderName: this.self ? this.self.name : '', own: true, deleted: false, edited: false,
        createdAt: it.createdAt, status: it.status, error: it.error,
      });
    }
    return out;
  }

  sortedConversations() {
    return [...this.convs.values()].filter((c) => c.kind).sort((a, b) => {
      if (a.id === this.roomConversationId) return -1;
      if (b.id === this.roomConversationId) return 1;
      return b.lastActivity - a.lastActivity;
    });
  }

  snapshot() {
    return {
      status: this.status,
      self: this.self,
      syncs: this.syncs,
      roomConversationId: this.roomConversationId,
      visible: this.visibleId,
      persistent: !!(this.store && this.store.persistent),
      presence: Object.fromEntries(this.presence),
      conversations: this.sortedConversations().map((c) => ({
        id: c.id, kind: c.kind, peer: c.peer, room: c.room, title: this.title(c),
        lastSeq: c.lastSeq, held: c.held, delivered: c.delivered, read: c.read, unread: c.unread,
        oldest: c.oldest, more: c.more, peerMarks: c.peerMarks,
        typing: [...c.typing.values()].map((t) => t.name),
        messages: this.timeline(c.id).map(({ seq, clientMsgId, kind, text, sender, own, status, deleted, edited }) => ({
          seq, clientMsgId, kind, text, sender, own, status, deleted, edited,
        })),
      })),
    };
  }

  stop() {
    this.outbox.stop();
    this.receipts.stop();
  }
}
