// Channel is the connection the chat models talk through: the Signaling
// of the link's latest join, or none while it is down. Outbox, Receipts,
// ChatSync and People get a Channel rather than the whole Chat or link,
// so each sees only requests and sends (and tests give them a fake one).

export class Channel {
  constructor() {
    this.sig = null;
  }

  // use switches to the Signaling of a new join.
  use(sig) {
    this.sig = sig;
  }

  get open() {
    return !!(this.sig && this.sig.isOpen);
  }

  // request rejects at once while there is no open connection.
  request(type, data, timeoutMs) {
    if (!this.open) return Promise.reject(new Error('not connected'));
    return this.sig.request(type, data, timeoutMs);
  }

  // send returns false while there is no open connection.
  send(type, data) {
    return this.open && this.sig.send(type, data);
  }
}
