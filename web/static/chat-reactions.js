// Emoji reactions on chat messages (docs/protocol.md, chat_react): the
// server stores each as a react or unreact event aimed at a text message;
// reactionsOf folds them, in seq order, into what each message shows.
// DOM-free, so the folding is unit-tested (as chat/fold.go is on the
// server, which it mirrors).

// REACTIONS is the server's fixed set (chat.Reactions), in picker order.
export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

// reactionsOf maps the seq of each text message in c with reactions to
// [{emoji, count, mine, who: [identity]}] in REACTIONS order. me: the
// user's identity (mine: the user is among them).
export function reactionsOf(c, me) {
  const sets = new Map(); // target seq -> Map(emoji -> Set(identity))
  const events = [...c.messages.values()].filter((m) => m.kind === 'react' || m.kind === 'unreact').sort((a, b) => a.seq - b.seq);
  for (const e of events) {
    const t = c.messages.get(e.targetSeq);
    if (!t || t.kind !== 'text' || t.deleted || e.targetSeq >= e.seq || !e.sender || !REACTIONS.includes(e.text)) continue;
    let byEmoji = sets.get(e.targetSeq);
    if (!byEmoji) sets.set(e.targetSeq, byEmoji = new Map());
    let who = byEmoji.get(e.text);
    if (!who) byEmoji.set(e.text, who = new Set());
    if (e.kind === 'react') who.add(e.sender.identity);
    else who.delete(e.sender.identity);
  }
  const out = new Map();
  for (const [seq, byEmoji] of sets) {
    const list = REACTIONS.filter((emoji) => byEmoji.has(emoji) && byEmoji.get(emoji).size > 0).map((emoji) => {
      const who = [...byEmoji.get(emoji)].sort();
      return { emoji, count: who.length, mine: who.includes(me), who };
    });
    if (list.length) out.set(seq, list);
  }
  return out;
}

// reactionsKey is a short text that changes whenever what a message's
// reactions show changes (the view re-renders on it).
export function reactionsKey(list) {
  return (list || []).map((r) => `${r.emoji}${r.count}${r.mine ? '*' : ''}`).join(',');
}
