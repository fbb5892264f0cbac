// PreJoin is the screen before a meeting: the user sees their camera,
// watches the microphone meter move, picks devices, chooses to join muted
// or with the camera off and says their name. The choices are remembered
// in this browser (join-choices.js) and handed to the join.

import { $ } from './dom.js';
import { loadChoices, saveChoices, deviceConstraint } from './join-choices.js';
import { roomLabel, fillSelect, canPickSpeaker } from './ui.js';

const METER_MS = 100; // how often the level meter is redrawn
const METER_FALL = 0.8; // per redraw: a peak stays readable for a moment

export class PreJoin {
  // store: localStorage (or null when storage is disabled).
  constructor(store) {
    this.store = store;
    this.stream = null;
    this.audioCtx = null;
    this.meterTimer = 0;
    this.level = 0;
    this.closed = false; // Join pressed: a preview still opening is released
    this.choices = loadChoices(store);
  }

  // run shows the screen for room and resolves with the choices when the
  // user presses Join; the preview devices are released by then.
  run(room, name) {
    const c = this.choices;
    if (name) c.name = name;
    $('prejoin-room').textContent = roomLabel(room);
    $('prejoin-name').value = c.name;
    $('prejoin-notice').hidden = true;
    const spk = canPickSpeaker();
    $('prejoin-spk-select').hidden = !spk;
    $('prejoin-spk-label').hidden = !spk;
    this.renderToggles();
    $('prejoin-mic').onclick = () => { c.micOn = !c.micOn; this.renderToggles(); };
    $('prejoin-cam').onclick = () => { c.camOn = !c.camOn; this.renderToggles(); };
    $('prejoin-cam-select').onchange = (ev) => this.pick('camera', ev.target.value);
    $('prejoin-mic-select').onchange = (ev) => this.pick('microphone', ev.target.value);
    $('prejoin-spk-select').onchange = (ev) => { c.speaker = ev.target.value; };
    // Browsers start audio analysis only after a user gesture.
    this.onGesture = () => { if (this.audioCtx && this.audioCtx.state === 'suspended') this.audioCtx.resume().catch(() => {}); };
    $('prejoin').addEventListener('pointerdown', this.onGesture);
    $('prejoin').addEventListener('keydown', this.onGesture);
    this.preview();
    return new Promise((resolve) => {
      $('prejoin-form').onsubmit = (ev) => {
        ev.preventDefault();
        const n = $('prejoin-name').value.trim();
        if (!n) {
          this.say('Enter your name so the others know who joined.');
          $('prejoin-name').focus();
          return;
        }
        c.name = n;
        saveChoices(this.store, c);
        this.close();
        resolve({ ...c });
      };
    });
  }

  say(text) {
    $('prejoin-notice').textContent = text;
    $('prejoin-notice').hidden = !text;
  }

  renderToggles() {
    const c = this.choices;
    const mic = $('prejoin-mic');
    mic.setAttribute('aria-pressed', String(!c.micOn));
    mic.querySelector('.ico').className = `ico ico-mic${c.micOn ? '' : '-off'}`;
    mic.querySelector('.txt').textContent = c.micOn ? 'Mic on' : 'Muted';
    mic.title = c.micOn ? 'Join with the microphone muted' : 'Join with the microphone on';
    const cam = $('prejoin-cam');
    cam.setAttribute('aria-pressed', String(!c.camOn));
    cam.querySelector('.ico').className = `ico ico-cam${c.camOn ? '' : '-off'}`;
    cam.querySelector('.txt').textContent = c.camOn ? 'Camera on' : 'Camera off';
    cam.title = c.camOn ? 'Join with the camera off' : 'Join with the camera on';
    $('prejoin-cam-off').hidden = c.camOn;
    $('prejoin-video').hidden = !c.camOn;
  }

  // preview opens the chosen (or default) camera and microphone.
  async preview() {
    const c = this.choices;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.say('This browser gives no access to camera and microphone here (an https:// address is needed). You can still join.');
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: c.camera ? deviceConstraint(c.camera) : true,
        audio: c.microphone ? deviceConstraint(c.microphone) : true,
      });
    } catch (err) {
      this.say(err && err.name === 'NotAllowedError'
        ? 'Camera and microphone are blocked for this site: allow them in the address bar to be seen and heard. You can still join.'
        : 'No camera or microphone could be opened. You can still join and listen.');
      return;
    }
    if (this.closed) { this.stopTracks(); return; }
    $('prejoin-video').srcObject = this.stream;
    this.startMeter();
    await this.fillDevices();
  }

  async fillDevices() {
    let list = [];
    try { list = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
    const current = (kind) => {
      const t = this.stream && (kind === 'video' ? this.stream.getVideoTracks()[0] : this.stream.getAudioTracks()[0]);
      return t ? t.getSettings().deviceId || '' : '';
    };
    fillSelect($('prejoin-cam-select'), list.filter((d) => d.kind === 'videoinput'), current('video'), 'Camera');
    fillSelect($('prejoin-mic-select'), list.filter((d) => d.kind === 'audioinput'), current('audio'), 'Microphone');
    fillSelect($('prejoin-spk-select'), list.filter((d) => d.kind === 'audiooutput'), this.choices.speaker, 'Speaker');
  }

  // pick swaps the previewed device for deviceId and remembers it.
  async pick(kind, deviceId) {
    this.choices[kind] = deviceId;
    if (!this.stream) return;
    const video = kind === 'camera';
    try {
      const s = await navigator.mediaDevices.getUserMedia(video
        ? { video: { deviceId: { exact: deviceId } } }
        : { audio: { deviceId: { exact: deviceId } } });
      const old = video ? this.stream.getVideoTracks() : this.stream.getAudioTracks();
      for (const t of old) { this.stream.removeTrack(t); t.stop(); }
      for (const t of s.getTracks()) this.stream.addTrack(t);
      if (video) $('prejoin-video').srcObject = this.stream;
      else this.startMeter();
    } catch (err) {
      this.say(`Cannot open that device: ${err.message || err}`);
    }
  }

  // startMeter shows the microphone's loudness (RMS of the waveform).
  startMeter() {
    this.stopMeter();
    const track = this.stream && this.stream.getAudioTracks()[0];
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!track || !AC) return;
    this.audioCtx = new AC();
    const src = this.audioCtx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.audioCtx.createAnalyser();
    analyser.fftSize = 1024;
    src.connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const meter = $('prejoin-meter');
    const bar = $('prejoin-meter-bar');
    this.meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const rms = Math.sqrt(sum / buf.length);
      // Speech sits around 0.02-0.2 RMS; scale so it fills most of the bar.
      this.level = Math.max(Math.min(1, rms * 5), this.level * METER_FALL);
      const pct = Math.round(this.level * 100);
      bar.style.width = `${pct}%`;
      meter.setAttribute('aria-valuenow', String(pct));
      meter.dataset.level = this.level.toFixed(2);
    }, METER_MS);
  }

  stopMeter() {
    clearInterval(this.meterTimer);
    this.meterTimer = 0;
    if (this.audioCtx) this.audioCtx.close().catch(() => {});
    this.audioCtx = null;
  }

  stopTracks() {
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
  }

  // close releases the preview (the call opens its own devices).
  close() {
    this.closed = true;
    this.stopMeter();
    this.stopTracks();
    $('prejoin-video').srcObject = null;
    $('prejoin').removeEventListener('pointerdown', this.onGesture);
    $('prejoin').removeEventListener('keydown', this.onGesture);
  }
}
