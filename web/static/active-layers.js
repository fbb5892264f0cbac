// ActiveLayers applies the server's dynacast requests ("active_layers",
// docs/protocol.md) to the local simulcast senders: the encodings whose
// rid is named are sent, the others paused.
//
// A request can fail in the browser for reasons that pass: Chrome refuses
// setParameters while a renegotiation changes the sender, and on a
// starved page it has answered "getParameters() has never been called"
// twice in a row. A layer left running that nobody needs costs the
// publisher's uplink for as long as the call lasts, and one left paused
// that someone needs freezes their tile, so each request is retried
// with a growing delay until it holds or a newer one replaces it. The
// latest request per track wins; requests for one track never overlap.

const ATTEMPTS = 8; // 0.25 + 0.5 + 1 + 2 + 4 + 4 + 4 s: 16 s of retries
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 4000;

// applyRids sets `active` on the encodings of params that have a rid
// (true when the rid is in rids) and tells whether anything changed.
// Encodings without a rid (a single-layer sender) are left alone.
export function applyRids(params, rids) {
  let changed = false;
  for (const e of params.encodings || []) {
    if (!e.rid) continue;
    const active = rids.includes(e.rid);
    if (e.active !== active) {
      e.active = active;
      changed = true;
    }
  }
  return changed;
}

export class ActiveLayers {
  // sender(trackId): the RTCRtpSender publishing trackId, or undefined;
  // idle(): a promise that settles when no renegotiation of the
  // publisher connection is running.
  constructor({ sender, idle = () => Promise.resolve(), log = () => {}, sleep = (ms) => new Promise((r) => setTimeout(r, ms)) }) {
    this.sender = sender;
    this.idle = idle;
    this.log = log;
    this.sleep = sleep;
    this.wanted = new Map(); // trackId -> rids of the latest request
    this.running = new Map(); // trackId -> promise of the loop applying it
    this.closed = false;
  }

  // set records the latest request for trackId and applies it; the
  // promise resolves true once the sender's encodings match the latest
  // request, false when the track is gone, the session closed or the
  // retries ran out.
  set(trackId, rids) {
    this.wanted.set(trackId, rids);
    let run = this.running.get(trackId);
    if (!run) {
      run = this.apply(trackId).finally(() => this.running.delete(trackId));
      this.running.set(trackId, run);
    }
    return run;
  }

  close() {
    this.closed = true;
  }

  async apply(trackId) {
    let delay = FIRST_DELAY_MS;
    let failures = 0;
    // Bounded: each pass either fails (at most ATTEMPTS) or applies a
    // request; a pass that applied an outdated one loops once more, and
    // outdated ones come only from the server's own messages.
    for (let pass = 0; pass < 100; pass++) {
      await this.idle();
      const rids = this.wanted.get(trackId);
      const sender = this.sender(trackId);
      if (this.closed || !sender) return false;
      try {
        const params = sender.getParameters();
        if (applyRids(params, rids)) await sender.setParameters(params);
        if (this.wanted.get(trackId) === rids) return true;
      } catch (err) {
        failures++;
        if (failures >= ATTEMPTS) {
          this.log(`active layers of ${trackId}: ${err}; giving up after ${failures} attempts`);
          return false;
        }
        this.log(`active layers of ${trackId}: ${err}; trying again in ${delay} ms`);
        await this.sleep(delay);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
    return false;
  }
}
