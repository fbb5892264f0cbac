// LocalMedia owns what this browser sends: camera, microphone and an
// optional screen share. Each published track keeps the id it was
// announced with, even after a device switch replaces the underlying
// MediaStreamTrack, because the server knows it by that id.

import { deviceConstraint } from './join-choices.js';

export class LocalMedia {
  constructor() {
    this.stream = new MediaStream(); // camera + mic, shown in the own tile
    this.cam = null; // {track, trackId}
    this.mic = null;
    this.screen = null; // {track, trackId, stream}
    this.error = '';
    this.errorName = ''; // the DOMException name of the last failed open
  }

  // open asks for camera and microphone; a missing device is not fatal,
  // the user then joins with what works (or receive-only). devices names
  // the preferred {camera, microphone} device ids (the pre-join choice);
  // a preferred device that is gone falls back to the default one.
  async open(devices = {}) {
    const video = { ...videoConstraints(), ...deviceConstraint(devices.camera) };
    const audio = devices.microphone ? deviceConstraint(devices.microphone) : true;
    const attempts = [{ video, audio }, { audio }, { video }];
    this.error = '';
    this.errorName = '';
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.error = 'this browser gives no access to camera and microphone here (an https:// address is needed)';
      this.errorName = 'SecurityError';
      return;
    }
    for (const c of attempts) {
      try {
        const s = await navigator.mediaDevices.getUserMedia(c);
        for (const t of s.getTracks()) this.adopt(t);
        this.error = '';
        this.errorName = '';
        return;
      } catch (err) {
        // The first refusal says most (a denied permission fails every
        // later attempt the same way).
        if (!this.errorName) {
          this.error = `${err.name}: ${err.message}`;
          this.errorName = err.name;
        }
      }
    }
  }

  adopt(track) {
    const slot = { track, trackId: track.id };
    if (track.kind === 'video') this.cam = slot;
    else this.mic = slot;
    this.stream.addTrack(track);
  }

  publishable() {
    const items = [];
    if (this.cam) items.push({ track: this.cam.track, source: 'camera', stream: this.stream });
    if (this.mic) items.push({ track: this.mic.track, source: 'microphone', stream: this.stream });
    // A share survives a rejoin: the new connection publishes it again.
    if (this.screen) items.push({ track: this.screen.track, source: 'screen', stream: this.screen.stream });
    return items;
  }

  slot(source) {
    return source === 'camera' ? this.cam : source === 'microphone' ? this.mic : null;
  }

  // setEnabled returns the published trackId of the source, or '' if none.
  setEnabled(source, enabled) {
    const s = this.slot(source);
    if (!s) return '';
    s.track.enabled = enabled;
    return s.trackId;
  }

  setEnabledById(trackId, enabled) {
    for (const s of [this.cam, this.mic, this.screen]) {
      if (s && s.trackId === trackId) s.track.enabled = enabled;
    }
  }

  async startScreen(onEnded) {
    if (this.screen) throw new Error('already sharing');
    if (!navigator.mediaDevices.getDisplayMedia) throw new Error('screen sharing is not supported by this browser');
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    // The browser's own "stop sharing" control ends the track.
    track.addEventListener('ended', onEnded);
    this.screen = { track, trackId: track.id, stream };
    return { track, source: 'screen', stream };
  }

  stopScreen() {
    if (!this.screen) return '';
    const { track, trackId } = this.screen;
    this.screen = null;
    track.stop();
    return trackId;
  }

  async devices() {
    const list = await navigator.mediaDevices.enumerateDevices();
    return {
      cameras: list.filter((d) => d.kind === 'videoinput'),
      mics: list.filter((d) => d.kind === 'audioinput'),
      speakers: list.filter((d) => d.kind === 'audiooutput'),
    };
  }

  currentDevice(kind) {
    const s = kind === 'videoinput' ? this.cam : this.mic;
    return s ? s.track.getSettings().deviceId || '' : '';
  }

  // switchDevice opens the chosen device and swaps it in; the old track
  // stops only after the new one exists, so a failure keeps the old one.
  async switchDevice(kind, deviceId) {
    const video = kind === 'videoinput';
    const constraints = video
      ? { video: { ...videoConstraints(), deviceId: { exact: deviceId } } }
      : { audio: { deviceId: { exact: deviceId } } };
    const s = await navigator.mediaDevices.getUserMedia(constraints);
    const track = video ? s.getVideoTracks()[0] : s.getAudioTracks()[0];
    const slot = video ? this.cam : this.mic;
    if (!slot) {
      this.adopt(track);
      return { trackId: '', track };
    }
    track.enabled = slot.track.enabled;
    this.stream.removeTrack(slot.track);
    slot.track.stop();
    slot.track = track;
    this.stream.addTrack(track);
    return { trackId: slot.trackId, track };
  }

  describe() {
    const d = (s) => (s ? {
      trackId: s.trackId, enabled: s.track.enabled, live: s.track.readyState === 'live',
      device: s.track.getSettings().deviceId || '',
    } : null);
    return { camera: d(this.cam), microphone: d(this.mic), screen: d(this.screen), error: this.error };
  }

  stopAll() {
    for (const s of [this.cam, this.mic, this.screen]) if (s) s.track.stop();
    this.cam = this.mic = this.screen = null;
    this.stream = new MediaStream();
  }
}

function videoConstraints() {
  return { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
}
