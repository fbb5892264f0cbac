// FakeClock stands in for setTimeout, setInterval, their clear functions
// and Date.now while installed, so timer-driven logic (backoff, deadlines,
// batching) runs at once and in a known order. Promise callbacks still run
// for real: advance() lets them settle before and after every timer.

const REAL = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  dateNow: Date.now,
  setImmediate: globalThis.setImmediate,
};

// MAX_STEPS bounds one advance(): a timer that keeps rescheduling itself
// at zero delay fails the test instead of hanging it.
const MAX_STEPS = 10000;

// settle waits until every queued promise callback has run: the real
// setImmediate fires only once the microtask queue is empty.
export function settle() {
  return new Promise((resolve) => REAL.setImmediate(resolve));
}

export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.now = start;
    this.timers = new Map(); // id -> {at, fn, args, every}
    this.nextId = 1;
  }

  install() {
    globalThis.setTimeout = (fn, ms, ...args) => this.add(fn, ms, args, false);
    globalThis.setInterval = (fn, ms, ...args) => this.add(fn, ms, args, true);
    globalThis.clearTimeout = (id) => this.timers.delete(id);
    globalThis.clearInterval = (id) => this.timers.delete(id);
    Date.now = () => this.now;
    return this;
  }

  uninstall() {
    globalThis.setTimeout = REAL.setTimeout;
    globalThis.clearTimeout = REAL.clearTimeout;
    globalThis.setInterval = REAL.setInterval;
    globalThis.clearInterval = REAL.clearInterval;
    Date.now = REAL.dateNow;
  }

  add(fn, ms, args, repeat) {
    const id = this.nextId++;
    const delay = Math.max(0, Number(ms) || 0);
    this.timers.set(id, { at: this.now + delay, fn, args, every: repeat ? Math.max(1, delay) : 0 });
    return id;
  }

  // pending is the number of timers not yet fired (intervals count once).
  get pending() {
    return this.timers.size;
  }

  // advance moves time forward by ms, firing due timers in time order.
  async advance(ms) {
    const end = this.now + ms;
    for (let step = 0; ; step++) {
      if (step >= MAX_STEPS) throw new Error(`FakeClock: more than ${MAX_STEPS} timers within ${ms} ms`);
      await settle();
      let id = 0;
      let next = null;
      for (const [k, t] of this.timers) {
        if (t.at <= end && (!next || t.at < next.at)) { id = k; next = t; }
      }
      if (!next) break;
      this.now = next.at;
      if (next.every) next.at += next.every;
      else this.timers.delete(id);
      next.fn(...next.args);
    }
    this.now = end;
    await settle();
  }
}
