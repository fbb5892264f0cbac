// CallEnd ends an IM-style call (a room "call-<uuid>" made for an
// accepted call invitation, docs/protocol.md "Calls") for this user when
// everyone else has left it: in a 1:1 call, the other's hang-up ends it
// here too, with "Ada left the call." on the end page, as in a phone
// call. Meetings (any other room) go on with one person in them.

// leftAloneText says why the call ends when the roster went from before
// to after (arrays of the other participants' {identity, name}), or ''
// while it goes on: only in a call room, only when someone was there and
// nobody is now.
export function leftAloneText(room, before, after) {
  if (!String(room || '').startsWith('call-')) return '';
  if (!before.length || after.length) return '';
  if (before.length > 1) return 'Everyone else left the call.';
  const p = before[0];
  return `${p.name || p.identity || 'The other person'} left the call.`;
}

export class CallEnd {
  constructor(call) {
    this.call = call;
    this.others = []; // the roster last seen, without us
    this.onRoster = () => this.check();
  }

  mount() {
    this.call.addEventListener('roster', this.onRoster);
  }

  unmount() {
    this.call.removeEventListener('roster', this.onRoster);
  }

  check() {
    const c = this.call;
    const now = [...c.participants.values()].map((p) => ({ identity: p.identity, name: p.name }));
    const text = leftAloneText(c.room, this.others, now);
    this.others = now;
    // leave tells the server, so the call room closes with us.
    if (text) c.leave(text);
  }
}
