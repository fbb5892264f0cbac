// Ringtone plays call sounds generated with WebAudio, so the client needs
// no audio files: 'incoming' is a double burst of 440+480 Hz every 2 s,
// 'outgoing' the same tone once every 4 s (the ringback a caller hears).
// Browsers may refuse to start audio before a user gesture; the state is
// then 'blocked' and the dialog still shows.

const PATTERNS = {
  incoming: { period: 2, bursts: [[0, 0.4], [0.6, 0.4]], gain: 0.15 },
  outgoing: { period: 4, bursts: [[0, 1.5]], gain: 0.08 },
};

export class Ringtone {
  constructor() {
    this.ctx = null;
    this.timer = 0;
    this.kind = '';
    this.state = 'off'; // off | playing | blocked
    this.onChange = () => {}; // the state changed
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onChange();
  }

  // unblock starts a blocked tone; call it from a user gesture.
  unblock() {
    if (this.state !== 'blocked' || !this.ctx) return;
    this.ctx.resume().catch(() => {});
  }

  start(kind) {
    if (this.kind === kind) return;
    this.stop();
    this.kind = kind;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) {
      this.setState('blocked');
      return;
    }
    try {
      if (!this.ctx) {
        this.ctx = new AC();
        // A blocked context starts on a later gesture (unblock, or the
        // browser's own rules): the state follows it.
        this.ctx.onstatechange = () => {
          if (this.kind) this.setState(this.ctx.state === 'running' ? 'playing' : 'blocked');
        };
      }
      // Not awaited: without a gesture the promise waits for one.
      if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    } catch {
      this.setState('blocked');
      return;
    }
    const p = PATTERNS[kind];
    const schedule = () => {
      // A suspended clock stands still: bursts queued now would all play
      // at once when it starts.
      if (this.ctx.state !== 'running') return;
      const t0 = this.ctx.currentTime + 0.05;
      for (const [at, len] of p.bursts) this.burst(t0 + at, len, p.gain);
    };
    schedule();
    this.timer = setInterval(schedule, p.period * 1000);
    this.setState(this.ctx.state === 'running' ? 'playing' : 'blocked');
  }

  burst(at, len, level) {
    const g = this.ctx.createGain();
    g.gain.setValueAtTime(0, at);
    g.gain.linearRampToValueAtTime(level, at + 0.02);
    g.gain.setValueAtTime(level, at + len - 0.02);
    g.gain.linearRampToValueAtTime(0, at + len);
    g.connect(this.ctx.destination);
    for (const f of [440, 480]) {
      const o = this.ctx.createOscillator();
      o.frequency.value = f;
      o.connect(g);
      o.start(at);
      o.stop(at + len);
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    this.kind = '';
    this.setState('off');
  }
}
