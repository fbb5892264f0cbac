// Chat is the client side of Parley's messaging protocol (docs/protocol.md,
// "Chat, presence and calls"). It rides on a link (a Call or a Messenger:
// see link.js) that emits 'joined' and 'message', and puts together the
// parts, each with only the collaborators it needs:
//   Conversations (chat-conversations.js)  what is held, in memory and IndexedDB
//   chat-log.js                            the rules of one conversation's log
//   ChatSync (chat-sync.js)                catch-up, gap refill, scroll-back
//   Outbox (chat-outbox.js)                own messages until stored
//   Receipts (chat-receipts.js)            batched delivered/read marks
//   People (chat-people.js)                names, presence, typing
//   chat-timeline.js                       what the views show
// Chat itself owns the status, the write path for new events (ingest),
// the marks, and the user's actions.

import { Channel } from './channel.js';
import { Conversations } from './chat-conversations.js';
import { addEvents, applyView, gapBefore, mergePeerMarks, mergeOwnMarks } from './chat-log.js';
import { ChatSync, PAGE } from './chat-sync.js';
import { Outbox, PERMANENT } from './chat-outbox.js';
import { Receipts } from './chat-receipts.js';
import { People } from './chat-people.js';
import { title, timeline, sortConversations } from './chat-timeline.js';
import { SignalingError, backoff } from './signaling.js';

const CHANGE_ATTEMPTS = 5; // an edit or delete is retried this often before it is reported failed

export class Chat extends EventTarget {
  // pageVisible: whether the user can see the page (marks read only then);
  // makeStore: see Conversations.
  constructor({ log = console.debug.bind(console), pageVisible = () => document.visibilityState === 'visible', makeStore } = {}) {
    super();
    this.log = log;
    this.pageVisible = pageVisible;
    this.channel = new Channel();
    this.self = null; // {identity, name}
    this.roomConversationId = '';
    this.visibleId = ''; // the conversation the user is looking at
    this.status = 'offline';
    this.pendingChange = false;
    const changed = () => this.changed();
    this.book = new Conversations({ log, makeStore });
    this.people = new People({ channel: this.channel, onChange: changed });
    this.sync = new ChatSync({
      book: this.book, channel: this.channel, changed, log,
      ingest: (c, list) => this.ingest(c, list),
      onNames: (list) => this.learnNames(list),
    });
    this.outbox = new Outbox({ channel: this.channel, onAck: (item, ack) => this.onAck(item, ack), onChange: changed, log });
    this.receipts = new Receipts({
      channel: this.channel, log,
      marks: (id) => this.book.get(id),
      onMarks: (d) => this.onOwnMarks(d),
    });
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

  get convs() {
    return this.book.map;
  }

  get presence() {
    return this.people.presence;
  }

  // attach follows a link: each (re)join brings a fresh Signaling.
  attach(link) {
    link.addEventListener('joined', (ev) => this.onJoined(ev.detail.sig, ev.detail.data));
    link.addEventListener('message', (ev) => {
      this.ready.then(() => this.onMessage(ev.detail));
    });
  }

  async onJoined(sig, data) {
    this.channel.use(sig);
    sig.addEventListener('close', () => {
      if (this.channel.sig !== sig) return;
      this.status = 'offline';
      this.changed();
    });
    const p = data.participant || {};
    if (!this.self || this.self.identity !== p.identity) {
      this.self = { identity: p.identity, name: p.name };
      this.ready = this.openStore(p.identity).catch((err) => this.log(`chat store: ${err}`));
    }
    await this.ready;
    this.people.learnName(p.identity, p.name);
    if (!data.grants || !data.grants.chat) {
      this.status = 'disabled';
      this.changed();
      return;
    }
    if (data.conversationId) {
      this.roomConversationId = data.conversationId;
      const c = this.book.conv(data.conversationId);
      c.kind = 'room';
      c.room = data.room;
    }
    this.status = 'syncing';
    this.changed();
    try {
      await this.sync.sync(sig);
    } catch (err) {
      this.log(`chat_sync: ${err.message || err}`);
      if (this.channel.sig !== sig) return;
    }
    if (this.channel.sig !== sig || !sig.isOpen) return;
    this.status = 'online';
    this.changed();
    this.outbox.kick();
    this.receipts.schedule();
    if (this.visibleId) this.markRead(this.visibleId);
  }

  async openStore(identity) {
    await this.book.open(identity, PAGE);
    await this.outbox.restore(this.book.store);
    this.changed();
  }

  // ----- receive path -----

  onMessage(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'message':
        this.sync.onPush(d).catch((err) => this.log(`chat push: ${err.message || err}`));
        break;
      case 'conversation':
        if (d.conversation) this.onConversation(d.conversation);
        break;
      case 'chat_receipt':
        this.onReceipt(d);
        break;
      case 'typing': {
        const c = this.book.get(d.conversationId);
        if (c && !(this.self && d.identity === this.self.identity)) this.people.onTyping(c.id, d.identity, d.name);
        break;
      }
      case 'presence':
        this.people.setPresence(d.identity, d.status);
        break;
      default:
        break;
    }
  }

  // onConversation takes the server's description of a conversation that
  // is new or changed; what it holds beyond held is fetched.
  onConversation(v) {
    const c = this.book.conv(v.id);
    applyView(c, v);
    if (!c.syncSeq) c.syncSeq = c.lastSeq;
    this.book.save(c);
    if (c.lastSeq > c.held) this.sync.fillGap(c).catch((err) => this.log(`refill: ${err.message || err}`));
    this.changed();
  }

  learnNames(list) {
    for (const m of list) if (m.sender) this.people.learnName(m.sender.identity, m.sender.name);
  }

  // ingest is the write path of new events: the log in memory, then the
  // store, and "delivered" only once the store's write committed.
  async ingest(c, list) {
    const me = this.self && this.self.identity;
    this.learnNames(list);
    const fresh = addEvents(c, list, me);
    for (const m of fresh) {
      if (!m.sender) continue;
      this.people.stoppedTyping(c.id, m.sender.identity);
      // Own message stored by an earlier attempt whose ack we never saw.
      if (m.sender.identity === me) this.outbox.settled(m.clientMsgId);
    }
    try {
      await this.book.putMessages(fresh);
    } catch (err) {
      this.log(`store messages: ${err}`);
      this.changed();
      return; // not stored: no delivery receipt
    }
    await this.book.save(c);
    if (c.held > c.delivered) this.receipts.queue(c.id, { delivered: c.held });
    if (this.visibleId === c.id) this.markRead(c.id);
    this.changed();
  }

  onReceipt(d) {
    const c = this.book.get(d.conversationId);
    if (!c) return;
    if (this.self && d.identity === this.self.identity) {
      this.onOwnMarks(d);
      return;
    }
    mergePeerMarks(c, d);
    this.book.save(c);
    this.changed();
  }

  // onOwnMarks applies this identity's watermarks (our receipt's reply,
  // or another of our devices that read the conversation).
  onOwnMarks(d) {
    const c = this.book.get(d.conversationId);
    if (!c) return;
    mergeOwnMarks(c, d, this.self && this.self.identity);
    this.book.save(c);
    this.changed();
  }

  // ----- user actions -----

  send(id, text) {
    const t = text.trim();
    if (!t) return null;
    return this.outbox.add(id, t);
  }

  retry(clientMsgId) { this.outbox.retry(clientMsgId); }

  loadOlder(id) {
    return this.sync.loadOlder(id);
  }

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

  // react adds the user's emoji reaction to a stored message, or takes
  // it back (remove); like an edit it shows once the server stored it.
  react(id, targetSeq, emoji, remove = false) {
    return this.change('chat_react', remove ? 'unreact' : 'react', id, { targetSeq, emoji, ...(remove ? { remove: true } : {}) });
  }

  async change(type, kind, id, body) {
    const clientMsgId = crypto.randomUUID();
    let lastErr = null;
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoff(attempt - 1)));
      if (!this.channel.open) {
        lastErr = new Error('no connection to the server');
        continue;
      }
      try {
        const reply = await this.channel.request(type, { conversationId: id, clientMsgId, ...body }, 8000);
        await this.ingestOwn(reply.data, { kind, text: body.text || body.emoji || '', targetSeq: body.targetSeq });
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
    const c = this.book.conv(ack.conversationId);
    const me = this.self || {};
    const gap = gapBefore(c, ack.seq);
    await this.ingest(c, [{
      conversationId: ack.conversationId, seq: ack.seq, serverId: ack.serverId, clientMsgId: ack.clientMsgId,
      sender: { identity: me.identity, name: me.name }, createdAt: ack.createdAt, ...fields,
    }]);
    if (gap) this.sync.fillGap(c).catch((err) => this.log(`refill: ${err.message || err}`));
  }

  // typing tells the others the user is typing in a conversation.
  typing(id) {
    this.people.sendTyping(id);
  }

  // setVisible records which conversation the user is looking at; it is
  // read up to what we hold whenever the page is visible.
  setVisible(id) {
    this.visibleId = id || '';
    if (id) this.markRead(id);
    this.changed();
  }

  markRead(id) {
    const c = this.book.get(id);
    if (!c || !this.pageVisible()) return;
    if (c.unread) {
      c.unread = 0;
      this.book.save(c);
      this.changed();
    }
    if (c.held > c.read) this.receipts.queue(id, { delivered: c.held, read: c.held });
  }

  openDirect(identity) {
    return this.openConversation('chat_direct', { identity });
  }

  // createGroup makes a group conversation with the given members (the
  // user is added by the server) and returns its id.
  createGroup(groupTitle, members) {
    return this.openConversation('chat_group', { title: groupTitle, members });
  }

  // openConversation asks for a conversation (chat_direct, chat_group),
  // keeps its description and fetches what it already holds.
  async openConversation(type, body) {
    if (!this.channel.open) throw new Error('not connected');
    const reply = await this.channel.request(type, body);
    const c = this.book.conv(reply.data.conversation.id);
    applyView(c, reply.data.conversation);
    if (!c.syncSeq) c.syncSeq = c.lastSeq;
    await this.book.save(c);
    if (c.lastSeq > c.held) await this.sync.fillGap(c);
    this.changed();
    return c.id;
  }

  // ----- views (chat-timeline.js) -----

  learnName(identity, name) {
    this.people.learnName(identity, name);
    this.changed();
  }

  nameOf(identity) {
    return this.people.nameOf(identity);
  }

  // typingIn lists the names of those typing in a conversation.
  typingIn(id) {
    return this.people.typing(id);
  }

  title(c) {
    return title(c, (id) => this.nameOf(id));
  }

  timeline(id) {
    const c = this.book.get(id);
    return c ? timeline(c, this.outbox.forConversation(id), this.self) : [];
  }

  sortedConversations() {
    return sortConversations(this.book.values(), this.roomConversationId);
  }

  // snapshot is a copy of the state for window.parley.chat().
  snapshot() {
    return {
      status: this.status,
      self: this.self,
      syncs: this.sync.syncs,
      roomConversationId: this.roomConversationId,
      visible: this.visibleId,
      persistent: this.book.persistent,
      presence: Object.fromEntries(this.people.presence),
      conversations: this.sortedConversations().map((c) => ({
        id: c.id, kind: c.kind, peer: c.peer, room: c.room, title: this.title(c),
        lastSeq: c.lastSeq, held: c.held, delivered: c.delivered, read: c.read, unread: c.unread,
        oldest: c.oldest, more: c.more, peerMarks: c.peerMarks,
        typing: this.typingIn(c.id),
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
