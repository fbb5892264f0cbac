// Speakers shows on the call page who is speaking, from the server's
// "speakers" event (docs/protocol.md): the active speaker's tile gets the
// class "speaking", every camera tile a small level meter, and a "You are
// muted" hint appears when the local microphone hears speech while the
// user is muted (local analysis of a clone of the mic track: the muted
// track itself carries silence).
//
// The model functions (tileSpeech, SpeechDetector, rmsDb) touch no DOM
// and have unit tests in web/test/speakers.test.js.

// tileSpeech is what one participant's tile shows for a "speakers" body:
// whether it is the active speaker and its level (0 when not speaking).
export function tileSpeech(body, identity) {
  const b = body || {};
  const entry = (b.speakers || []).find((s) => s.identity === identity);
  const level = entry ? Math.min(1, Math.max(0, Number(entry.level) || 0)) : 0;
  return { active: !!identity && b.active === identity, level };
}

// rmsDb is the level in dBFS of time-domain samples (-100 for silence).
export function rmsDb(samples) {
  let sum = 0;
  for (const v of samples) sum += v * v;
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
}

// SpeechDetector decides when to show the muted hint: after `onMs` of
// mostly loud frames while muted, and hides it `holdMs` after the last
// loud one or at once when unmuted. Times are in ms, fed by the caller.
export class SpeechDetector {
  constructor({ thresholdDb = -45, onMs = 400, holdMs = 3000 } = {}) {
    this.thresholdDb = thresholdDb;
    this.onMs = onMs;
    this.holdMs = holdMs;
    this.runStart = -1;
    this.lastLoud = -Infinity;
    this.showing = false;
  }

  // update takes one measurement and returns whether the hint shows.
  update(now, db, muted) {
    if (!muted) {
      this.runStart = -1;
      this.showing = false;
      return false;
    }
    if (db >= this.thresholdDb) {
      // Gaps between syllables up to 250 ms keep the run going.
      if (this.runStart < 0 || now - this.lastLoud > 250) this.runStart = now;
      this.lastLoud = now;
      if (now - this.runStart >= this.onMs) this.showing = true;
    } else if (this.showing && now - this.lastLoud > this.holdMs) {
      this.showing = false;
    }
    return this.showing;
  }
}

// SpeakerUI applies the model to the page. Mount it after the UI so its
// tiles exist when it renders.
export class SpeakerUI {
  constructor(call, grid) {
    this.call = call;
    this.grid = grid;
    this.body = null;
    this.detector = new SpeechDetector();
    this.render = () => this.renderTiles();
    this.onSpeakers = (ev) => {
      this.body = ev.detail;
      this.renderTiles();
    };
    this.hint = null;
    this.timer = 0;
    this.audioCtx = null;
    this.analysed = null; // {track, clone, source, analyser}
  }

  mount() {
    const c = this.call;
    c.addEventListener('speakers', this.onSpeakers);
    c.addEventListener('roster', this.render);
    c.addEventListener('local', this.render);
    this.hint = document.createElement('div');
    this.hint.className = 'muted-hint';
    this.hint.dataset.testid = 'muted-hint';
    this.hint.setAttribute('role', 'status');
    this.hint.textContent = 'You are muted';
    this.hint.hidden = true;
    document.body.append(this.hint);
    this.timer = setInterval(() => this.listen(), 100);
  }

  unmount() {
    const c = this.call;
    c.removeEventListener('speakers', this.onSpeakers);
    c.removeEventListener('roster', this.render);
    c.removeEventListener('local', this.render);
    clearInterval(this.timer);
    this.stopAnalysis();
    if (this.audioCtx) this.audioCtx.close().catch(() => {});
    this.audioCtx = null;
    if (this.hint) this.hint.remove();
  }

  identityOf(sid) {
    const c = this.call;
    if (c.self && c.self.sid === sid) return c.self.identity;
    const p = c.participants.get(sid);
    return p ? p.identity : '';
  }

  renderTiles() {
    for (const el of this.grid.querySelectorAll('.tile')) {
      const screen = el.dataset.source === 'screen';
      const { active, level } = tileSpeech(this.body, screen ? '' : this.identityOf(el.dataset.participant));
      el.classList.toggle('speaking', active);
      let meter = el.querySelector('.level-meter');
      if (screen) {
        if (meter) meter.remove();
        continue;
      }
      if (!meter) {
        meter = document.createElement('div');
        meter.className = 'level-meter';
        meter.dataset.testid = 'level-meter';
        meter.setAttribute('aria-hidden', 'true');
        meter.append(document.createElement('span'));
        el.append(meter);
      }
      meter.dataset.level = String(level);
      meter.firstChild.style.width = `${Math.round(level * 100)}%`;
    }
  }

  // listen measures the local microphone (10 times a second) while it is
  // muted, and shows or hides the hint.
  listen() {
    const slot = this.call.media.mic;
    const muted = !!(slot && slot.track.readyState === 'live' && !slot.track.enabled);
    if (!muted) {
      this.stopAnalysis();
      this.detector.update(performance.now(), -100, false);
      this.hint.hidden = true;
      return;
    }
    if (!this.analysed || this.analysed.track !== slot.track) this.startAnalysis(slot.track);
    if (!this.analysed) return;
    const buf = new Float32Array(this.analysed.analyser.fftSize);
    this.analysed.analyser.getFloatTimeDomainData(buf);
    this.hint.hidden = !this.detector.update(performance.now(), rmsDb(buf), true);
  }

  startAnalysis(track) {
    this.stopAnalysis();
    try {
      if (!this.audioCtx) this.audioCtx = new AudioContext();
      // A muted track gives silence: analyse an enabled clone of it.
      const clone = track.clone();
      clone.enabled = true;
      const source = this.audioCtx.createMediaStreamSource(new MediaStream([clone]));
      const analyser = this.audioCtx.createAnalyser();
      analyser.fftSize = 2048;
      source.connect(analyser);
      this.analysed = { track, clone, source, analyser };
      // Without a user gesture the context may start suspended.
      if (this.audioCtx.state === 'suspended') this.audioCtx.resume().catch(() => {});
    } catch (err) {
      this.call.log && this.call.log(`mic analysis: ${err}`);
      this.analysed = null;
    }
  }

  stopAnalysis() {
    const a = this.analysed;
    if (!a) return;
    a.source.disconnect();
    a.clone.stop();
    this.analysed = null;
  }
}
