// Receipts batches "delivered up to N" and "read up to N" per conversation
// and sends them a few at a time: receipts share the server's chat write
// bucket (10/s, burst 20) with the user's messages, so a sync of many
// conversations must not spend it all at once. Marks only grow, so a
// receipt that was refused (rate limit, broken connection) is simply
// merged into the next one.

const FLUSH_MS = 250;
const PER_FLUSH = 3;

export class Receipts {
  // channel: the Channel to send on; marks(conversationId): the marks the
  // server already has ({delivered, read}, or undefined when unknown), so
  // nothing is sent twice; onMarks(data): the server's reply, this
  // identity's new watermarks.
  constructor({ channel, marks, onMarks, log }) {
    this.channel = channel;
    this.marks = marks;
    this.onMarks = onMarks;
    this.log = log;
    this.pending = new Map(); // conversationId -> {delivered, read}
    this.timer = 0;
  }

  queue(conversationId, { delivered = 0, read = 0 }) {
    const p = this.pending.get(conversationId) || { delivered: 0, read: 0 };
    p.delivered = Math.max(p.delivered, delivered, read);
    p.read = Math.max(p.read, read);
    this.pending.set(conversationId, p);
    this.schedule();
  }

  schedule() {
    if (!this.timer && this.pending.size) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush() {
    this.timer = 0;
    if (!this.channel.open) return; // the next join calls schedule() again
    let n = 0;
    for (const [id, p] of [...this.pending]) {
      if (n++ >= PER_FLUSH) break;
      this.pending.delete(id);
      const known = this.marks(id);
      const data = { conversationId: id };
      if (!known || p.delivered > known.delivered) data.delivered = p.delivered;
      if (!known || p.read > known.read) data.read = p.read;
      if (!data.delivered && !data.read) continue;
      this.channel.request('chat_receipt', data).then((reply) => {
        this.onMarks(reply.data);
      }, (err) => {
        this.log(`chat_receipt: ${err.message || err}`);
        if (err.code === 'rate_limited' || !err.code) this.queue(id, { delivered: data.delivered || 0, read: data.read || 0 });
      });
    }
    this.schedule();
  }

  // flushNow sends everything queued without waiting for replies: the
  // page is going away (best effort; the socket may close first).
  flushNow() {
    if (!this.channel.open) return;
    for (const [id, p] of this.pending) {
      const data = { conversationId: id };
      if (p.delivered) data.delivered = p.delivered;
      if (p.read) data.read = p.read;
      this.channel.send('chat_receipt', data);
    }
    this.pending.clear();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
  }
}
