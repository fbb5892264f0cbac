// The event log of one conversation and the rules that keep it whole
// (docs/protocol.md, "Chat"): events by seq, `held`, the oldest event
// loaded, unread counting and edit folding. Plain functions on the
// conversation object, without I/O, so the rules are testable alone.
//
// `held` is the highest seq up to which this client holds every event
// without a gap, counted from the oldest one it loaded. A pushed event
// beyond held+1 reveals a gap (refilled with chat_range); after a
// reconnect chat_sync names `held` per conversation and gets what is
// missing.

// VISIBLE_KINDS are the events shown as entries; edits and deletes are
// folded into their targets instead.
export const VISIBLE_KINDS = new Set(['text', 'call_missed', 'call_declined', 'system']);

// PERSISTED are the fields of a conversation kept in the ChatStore.
export const PERSISTED = ['id', 'kind', 'peer', 'room', 'title', 'lastSeq', 'held', 'delivered', 'read', 'unread', 'lastActivity', 'syncSeq', 'peerMarks', 'oldest', 'more'];

export function newConv(id) {
  return {
    id, kind: '', peer: '', room: '', title: '', lastSeq: 0, held: 0, delivered: 0, read: 0, unread: 0,
    lastActivity: 0, syncSeq: 0, peerMarks: {}, oldest: 0, more: true,
    messages: new Map(), loadingOlder: false, filling: false,
  };
}

// stored is the part of c that the ChatStore keeps.
export function stored(c) {
  const out = {};
  for (const k of PERSISTED) out[k] = c[k];
  return out;
}

// restoreConv puts a stored conversation back into c.
export function restoreConv(c, saved) {
  for (const k of PERSISTED) if (saved[k] !== undefined) c[k] = saved[k];
}

// applyView merges the server's description of a conversation; the
// watermarks only grow.
export function applyView(c, v) {
  c.kind = v.kind;
  c.peer = v.peer || '';
  c.room = v.room || c.room;
  c.title = v.title || '';
  c.lastSeq = Math.max(c.lastSeq, v.lastSeq || 0);
  c.delivered = Math.max(c.delivered, v.delivered || 0);
  c.read = Math.max(c.read, v.read || 0);
  c.lastActivity = Math.max(c.lastActivity, v.lastActivity || 0);
}

// gapBefore reports whether an event with seq leaves a hole after held,
// which then needs a refill. A conversation holding nothing yet has no
// gap: its log starts wherever its first event is (advanceHeld).
export function gapBefore(c, seq) {
  return c.held > 0 && seq > c.held + 1;
}

// addEvents puts events (in any order) into c's log and returns the ones
// it did not hold yet. Events from others that are newer than both the
// last sync and the read mark count as unread (the sync's count covers
// the older ones). me: the user's identity.
export function addEvents(c, list, me) {
  const fresh = [];
  for (const m of list) {
    if (m.conversationId !== c.id || c.messages.has(m.seq)) continue;
    c.messages.set(m.seq, { ...m });
    fresh.push(m);
    if (m.sender && m.sender.identity !== me && VISIBLE_KINDS.has(m.kind) && m.seq > c.syncSeq && m.seq > c.read) {
      c.unread++;
    }
    c.lastSeq = Math.max(c.lastSeq, m.seq);
    c.lastActivity = Math.max(c.lastActivity, m.createdAt || 0);
  }
  if (!c.oldest && fresh.length) c.oldest = Math.min(...fresh.map((m) => m.seq));
  if (c.oldest === 1) c.more = false; // nothing before the first event
  advanceHeld(c);
  foldEdits(c, fresh);
  return fresh;
}

// advanceHeld moves held over every contiguous event. The first page
// loaded may start anywhere, so with nothing held contiguity starts at the
// oldest event.
export function advanceHeld(c) {
  while (c.messages.has(c.held + 1)) c.held++;
  if (c.held === 0 && c.oldest > 0) {
    c.held = c.oldest;
    while (c.messages.has(c.held + 1)) c.held++;
  }
}

// addOlder puts a page of older events (scroll-back, ascending) before
// the oldest one; more: whether the source has still older ones. It does
// not touch held or unread: these events are history.
export function addOlder(c, list, more) {
  for (const m of list) {
    if (!c.messages.has(m.seq)) c.messages.set(m.seq, { ...m });
  }
  if (list.length) c.oldest = Math.min(c.oldest, list[0].seq);
  c.more = more && c.oldest > 1;
  foldEdits(c, [...c.messages.values()].filter((m) => m.kind === 'edit' || m.kind === 'delete'));
}

// isContiguousPage reports whether a page read from the local store
// (ascending) ends right before c's oldest event without holes, i.e. it
// can stand in for the server's page.
export function isContiguousPage(c, list) {
  return list.length > 0 && list[list.length - 1].seq === c.oldest - 1 &&
    list.every((m, i) => i === 0 || m.seq === list[i - 1].seq + 1);
}

// foldEdits applies edit and delete events to their targets; an edit
// counts only from the target's own sender.
export function foldEdits(c, list) {
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

// mergePeerMarks records another member's receipt; marks only grow and
// read implies delivered.
export function mergePeerMarks(c, d) {
  const pm = c.peerMarks[d.identity] || { delivered: 0, read: 0 };
  pm.delivered = Math.max(pm.delivered, d.delivered || 0, d.read || 0);
  pm.read = Math.max(pm.read, d.read || 0);
  c.peerMarks[d.identity] = pm;
}

// mergeOwnMarks applies this identity's watermarks; a read mark that moved
// recounts unread from what is held.
export function mergeOwnMarks(c, d, me) {
  c.delivered = Math.max(c.delivered, d.delivered || 0);
  if ((d.read || 0) > c.read) {
    c.read = d.read;
    c.unread = [...c.messages.values()].filter((m) => m.seq > c.read && m.sender && m.sender.identity !== me && VISIBLE_KINDS.has(m.kind)).length;
  }
}
