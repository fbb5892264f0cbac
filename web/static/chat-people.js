// People is what the chat knows about other users: display names (from
// joins, events, typing and rings), presence (online, in_call, offline)
// and who is typing in which conversation.

const TYPING_SEND_MS = 3000; // we tell the others at most this often
const TYPING_SHOW_MS = 6000; // someone typing shows this long after their last notice

export class People {
  // channel: the Channel that `typing` goes out on; onChange: called when
  // anything shown changed.
  constructor({ channel, onChange }) {
    this.channel = channel;
    this.onChange = onChange;
    this.names = new Map(); // identity -> display name
    this.presence = new Map(); // identity -> online | in_call | offline
    this.typingIn = new Map(); // conversationId -> Map(identity -> {name, until})
    this.lastSent = new Map(); // conversationId -> ms of our last typing notice
  }

  learnName(identity, name) {
    if (identity && name) this.names.set(identity, name);
  }

  nameOf(identity) {
    return this.names.get(identity) || identity;
  }

  setPresence(identity, status) {
    this.presence.set(identity, status);
    this.onChange();
  }

  // onTyping shows that identity types in a conversation, until a notice
  // stops coming for TYPING_SHOW_MS or their message arrives.
  onTyping(conversationId, identity, name) {
    this.learnName(identity, name);
    let here = this.typingIn.get(conversationId);
    if (!here) {
      here = new Map();
      this.typingIn.set(conversationId, here);
    }
    here.set(identity, { name: name || identity, until: Date.now() + TYPING_SHOW_MS });
    setTimeout(() => {
      const t = here.get(identity);
      if (t && t.until <= Date.now()) {
        here.delete(identity);
        this.onChange();
      }
    }, TYPING_SHOW_MS + 50);
    this.onChange();
  }

  stoppedTyping(conversationId, identity) {
    const here = this.typingIn.get(conversationId);
    if (here) here.delete(identity);
  }

  // typing lists the names of those typing in a conversation.
  typing(conversationId) {
    const here = this.typingIn.get(conversationId);
    return here ? [...here.values()].map((t) => t.name) : [];
  }

  // sendTyping tells the others that the user types in a conversation.
  sendTyping(conversationId) {
    const now = Date.now();
    if (!this.channel.open || now - (this.lastSent.get(conversationId) || 0) < TYPING_SEND_MS) return;
    this.lastSent.set(conversationId, now);
    this.channel.send('typing', { conversationId });
  }
}
