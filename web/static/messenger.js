// Messenger is a messaging session without a call (docs/protocol.md,
// Sessions): a Link joined with a room-less token carrying the chat grant.
// All of its reconnect logic is Link's; what is its own is how the server
// can end it.

import { Link } from './link.js';

const BYE_TEXT = {
  removed: 'You were signed out by the server.',
  left: 'Signed out.',
};

export class Messenger extends Link {
  // renew (dev mode) fetches a fresh guest token when the server no
  // longer accepts this one (Link).
  constructor({ token, url, log, signaling, renew }) {
    super({ token, url, log, signaling, renew, byeText: BYE_TEXT });
  }
}
