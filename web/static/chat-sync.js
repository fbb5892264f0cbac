// ChatSync is the receive side of the chat protocol (docs/protocol.md,
// "Chat"): the catch-up after every join (chat_sync from each
// conversation's held), pushed events and the refill of the gaps they
// reveal (chat_range), the first page of a conversation never held
// (chat_history) and scroll-back (from the local store when it has the
// whole page, else chat_history).

import { applyView, gapBefore, isContiguousPage, addOlder } from './chat-log.js';

export const PAGE = 30; // events per history page
const SYNC_LIMIT = 100; // events per conversation in a chat_sync or chat_range reply
const MAX_RANGE_PAGES = 20; // one refill asks at most this many chat_range pages
const PRELOAD_CONVERSATIONS = 20; // new conversations whose latest page loads at once

export class ChatSync {
  // book: the Conversations; channel: the Channel; ingest(c, list): the
  // chat's write path for new events (memory, store, receipts);
  // onNames(list): events whose sender names to learn; changed(); log.
  constructor({ book, channel, ingest, onNames = () => {}, changed, log }) {
    this.book = book;
    this.channel = channel;
    this.ingest = ingest;
    this.onNames = onNames;
    this.changed = changed;
    this.log = log;
    this.syncs = 0; // completed chat_syncs
  }

  // sync catches up on sig, the connection of a fresh join; it stops
  // when a newer join replaced it.
  async sync(sig) {
    const lastSeqs = {};
    for (const c of this.book.values()) if (c.held > 0) lastSeqs[c.id] = c.held;
    const reply = await sig.request('chat_sync', { lastSeqs, limit: SYNC_LIMIT });
    if (this.channel.sig !== sig) return;
    this.syncs++;
    const d = reply.data || {};
    for (const id of d.gone || []) this.book.remove(id);
    const fresh = [];
    for (const entry of d.conversations || []) {
      const c = this.book.conv(entry.conversation.id);
      applyView(c, entry.conversation);
      // The server's unread count covers everything up to its lastSeq;
      // events pushed after this sync are counted by addEvents.
      c.unread = entry.conversation.unread || 0;
      c.syncSeq = c.lastSeq;
      await this.ingest(c, entry.messages || []);
      if (entry.more) await this.fillForward(c);
      if (c.held === 0 && c.lastSeq > 0) fresh.push(c);
      else this.book.save(c);
    }
    for (const c of fresh.slice(0, PRELOAD_CONVERSATIONS)) await this.loadLatest(c);
    this.changed();
  }

  // onPush takes a pushed event; one that skips ahead of held is followed
  // by a refill. In a conversation with nothing held the event starts
  // the log (older ones come with scroll-back).
  async onPush(m) {
    if (!this.book.has(m.conversationId)) this.log(`message for a conversation not synced yet: ${m.conversationId}`);
    const c = this.book.conv(m.conversationId);
    const gap = gapBefore(c, m.seq);
    await this.ingest(c, [m]);
    if (gap) await this.fillGap(c);
  }

  // fillGap fetches what lies between held and the newest event; one
  // refill per conversation at a time.
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

  // fillForward asks for the events after held, page by page, until the
  // server has no more or a page brought nothing contiguous.
  async fillForward(c) {
    const sig = this.channel.sig;
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
    const sig = this.channel.sig;
    if (!sig || !sig.isOpen) return;
    const reply = await sig.request('chat_history', { conversationId: c.id, limit: PAGE });
    const list = (reply.data.messages || []).slice().reverse();
    if (list.length) c.oldest = c.oldest ? Math.min(c.oldest, list[0].seq) : list[0].seq;
    c.more = !!reply.data.more;
    await this.ingest(c, list);
  }

  // loadOlder scrolls back one page.
  async loadOlder(id) {
    const c = this.book.get(id);
    if (!c || c.loadingOlder || !c.more || !c.oldest) return;
    c.loadingOlder = true;
    this.changed();
    try {
      let list = await this.book.localPage(id, c.oldest, PAGE);
      let more;
      if (isContiguousPage(c, list) && list.length === Math.min(PAGE, c.oldest - 1)) {
        more = list[0].seq > 1;
      } else if (this.channel.open) {
        const reply = await this.channel.request('chat_history', { conversationId: id, beforeSeq: c.oldest, limit: PAGE });
        list = (reply.data.messages || []).slice().reverse();
        more = !!reply.data.more;
      } else {
        return;
      }
      this.onNames(list);
      addOlder(c, list, more);
      await this.book.putMessages(list).catch(() => {});
      await this.book.save(c);
    } catch (err) {
      this.log(`load older: ${err.message || err}`);
    } finally {
      c.loadingOlder = false;
      this.changed();
    }
  }
}
