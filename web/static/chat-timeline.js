// The chat's view-model: what the views (chat-ui.js) and the test hook
// show of the model, computed from it on demand: titles, the marks on own
// messages, a conversation's timeline and the order of the list.

import { VISIBLE_KINDS } from './chat-log.js';
import { reactionsOf } from './chat-reactions.js';

// title names a conversation. nameOf: identity -> display name.
export function title(c, nameOf) {
  if (c.kind === 'room') return c.room && c.room.startsWith('call-') ? 'Call chat' : `Room ${c.room || ''}`.trim();
  if (c.kind === 'direct') return nameOf(c.peer);
  return groupTitle(c.title, nameOf);
}

// groupTitle shows a group's title with names for identities: the web
// client titles a new group with its members' names, and one it did not
// know a name for yet went in as the identity ("Ada, guest-k3") until
// the name is known ("Ada, Bob").
export function groupTitle(t, nameOf) {
  if (!t) return 'Group';
  return t.split(', ').map((part) => nameOf(part)).join(', ');
}

// statusOf is the mark on an own stored message: delivered or read once
// any other member's receipt covers it (the server reports them in direct
// and group conversations), else sent.
export function statusOf(c, m) {
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
// (edits and deletes folded into their targets), then the own messages of
// the outbox (pending or failed). self: {identity, name} or null.
export function timeline(c, outboxItems, self) {
  const me = self && self.identity;
  const out = [];
  const reactions = reactionsOf(c, me);
  for (const m of [...c.messages.values()].sort((a, b) => a.seq - b.seq)) {
    if (!VISIBLE_KINDS.has(m.kind)) continue;
    const own = !!m.sender && m.sender.identity === me;
    out.push({
      key: `s${m.seq}`, seq: m.seq, clientMsgId: m.clientMsgId, kind: m.kind, text: m.text || '',
      sender: m.sender ? m.sender.identity : '', senderName: m.sender ? m.sender.name || m.sender.identity : '',
      own, deleted: !!m.deleted, edited: !!m.edited, createdAt: m.createdAt,
      status: own && m.kind === 'text' ? statusOf(c, m) : '',
      reactions: reactions.get(m.seq) || [],
    });
  }
  for (const it of outboxItems) {
    out.push({
      key: `c${it.clientMsgId}`, seq: 0, clientMsgId: it.clientMsgId, kind: 'text', text: it.text,
      sender: me, senderName: self ? self.name : '', own: true, deleted: false, edited: false,
      createdAt: it.createdAt, status: it.status, error: it.error, reactions: [],
    });
  }
  return out;
}

// sortConversations orders the list: the call room's conversation first,
// then by latest activity. Conversations the server has not described yet
// (no kind) are left out.
export function sortConversations(convs, roomConversationId) {
  return [...convs].filter((c) => c.kind).sort((a, b) => {
    if (a.id === roomConversationId) return -1;
    if (b.id === roomConversationId) return 1;
    return b.lastActivity - a.lastActivity;
  });
}
