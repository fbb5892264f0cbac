// UI renders a Call into the page: the participant grid, the status pill
// and the control bar. Rendering is keyed reconciliation: tiles are kept
// across updates so a video never restarts because someone else changed.

import { $, showPill } from './dom.js';

export class UI {
  constructor(call) {
    this.call = call;
    this.grid = $('grid');
    this.tiles = new Map(); // key -> {el, video, nameEl, micIco, camIco, avatar}
    this.audio = document.createElement('div');
    this.audio.hidden = true;
    document.body.append(this.audio);
    this.audioEls = new Map(); // `${participant}|${trackSid}` -> <audio>
    this.onResize = () => this.layout();
  }

  mount() {
    const c = this.call;
    $('room-name').textContent = roomLabel(c.room || roomFromPath() || '');
    c.addEventListener('status', (ev) => this.showStatus(ev.detail));
    c.addEventListener('roster', () => this.render());
    c.addEventListener('local', () => { this.render(); this.renderControls(); });
    c.addEventListener('notice', (ev) => this.notice(ev.detail));
    $('mic-btn').onclick = () => c.setMuted('microphone', this.isOn('microphone'));
    $('cam-btn').onclick = () => c.setMuted('camera', this.isOn('camera'));
    $('screen-btn').onclick = () => this.toggleScreen();
    $('devices-btn').onclick = () => this.toggleDevices();
    $('leave-btn').onclick = () => c.leave();
    $('cam-select').onchange = (ev) => this.pickDevice('videoinput', ev.target.value);
    $('mic-select').onchange = (ev) => this.pickDevice('audioinput', ev.target.value);
    window.addEventListener('resize', this.onResize);
    this.showStatus({ status: c.status });
    this.renderControls();
    this.render();
  }

  unmount() {
    window.removeEventListener('resize', this.onResize);
    for (const a of this.audioEls.values()) a.srcObject = null;
    this.audio.remove();
    for (const t of this.tiles.values()) t.el.remove();
    this.tiles.clear();
  }

  isOn(source) {
    const d = this.call.media.describe()[source];
    return !!(d && d.enabled);
  }

  showStatus({ status, detail }) {
    showPill($('conn-status'), status);
    if (detail) this.notice(detail);
    else if (status === 'connected') this.notice('');
    if (this.call.room) $('room-name').textContent = roomLabel(this.call.room);
  }

  notice(text) {
    const b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
    this.layout(); // the banner takes height from the grid
  }

  renderControls() {
    const d = this.call.media.describe();
    setToggle($('mic-btn'), d.microphone, 'mic', 'Mute microphone', 'Unmute microphone');
    setToggle($('cam-btn'), d.camera, 'cam', 'Turn camera off', 'Turn camera on');
    const sharing = !!d.screen;
    const sb = $('screen-btn');
    sb.setAttribute('aria-pressed', String(sharing));
    sb.title = sharing ? 'Stop sharing' : 'Share screen';
    sb.querySelector('.txt').textContent = sharing ? 'Stop' : 'Share';
    const canPublish = !this.call.grants || this.call.grants.publish !== false;
    sb.disabled = !canPublish || !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
  }

  async toggleScreen() {
    try {
      if (this.call.media.screen) await this.call.stopScreen();
      else await this.call.shareScreen();
    } catch (err) {
      if (err && err.name !== 'NotAllowedError') this.notice(`Screen sharing failed: ${err.message || err}`);
    }
    this.renderControls();
  }

  async toggleDevices() {
    const panel = $('devices');
    const open = panel.hidden;
    panel.hidden = !open;
    $('devices-btn').setAttribute('aria-expanded', String(open));
    if (!open) return;
    try {
      const { cameras, mics } = await this.call.media.devices();
      fillSelect($('cam-select'), cameras, this.call.media.currentDevice('videoinput'), 'Camera');
      fillSelect($('mic-select'), mics, this.call.media.currentDevice('audioinput'), 'Microphone');
    } catch (err) {
      this.notice(`Cannot list devices: ${err.message || err}`);
    }
  }

  async pickDevice(kind, deviceId) {
    if (!deviceId) return;
    try {
      await this.call.switchDevice(kind, deviceId);
    } catch (err) {
      this.notice(`Cannot switch device: ${err.message || err}`);
    }
  }

  // desired computes the tiles the grid should show, in order.
  desired() {
    const c = this.call;
    const m = c.media.describe();
    const selfName = (c.self && c.self.name) || c.name || 'You';
    const out = [{
      key: 'self', self: true, source: 'camera', sid: c.self ? c.self.sid : '',
      name: `${selfName} (you)`, track: m.camera && m.camera.live ? c.media.cam.track : null,
      camOff: !m.camera || !m.camera.enabled, micOff: !m.microphone || !m.microphone.enabled,
    }];
    if (c.media.screen) {
      out.push({ key: 'self:screen', self: false, source: 'screen', sid: out[0].sid,
        name: `${selfName} (you, screen)`, track: c.media.screen.track, camOff: false, micOff: false });
    }
    for (const p of c.participants.values()) {
      const tracks = p.tracks || [];
      const bySource = (src) => tracks.find((t) => t.source === src);
      const remote = (t) => (t ? c.remoteTracks.get(`${p.sid}|${t.sid}`) || null : null);
      // A video that arrived before its participant_updated is the camera.
      let camTrack = remote(bySource('camera'));
      if (!camTrack) {
        for (const [k, tr] of c.remoteTracks) {
          if (k.startsWith(`${p.sid}|`) && tr.kind === 'video' && !tracks.some((t) => `${p.sid}|${t.sid}` === k)) camTrack = tr;
        }
      }
      const cam = bySource('camera');
      const mic = bySource('microphone');
      // Ingest streams (OBS) are marked, with any problem the server
      // reports (for example audio unavailable) in the label.
      let name = p.name || p.identity || 'Guest';
      if (p.stream) name = `${name} (live stream${p.notice ? `, ${p.notice}` : ''})`;
      out.push({ key: p.sid, self: false, source: 'camera', sid: p.sid, name,
        track: camTrack, camOff: !cam || cam.muted || !camTrack, micOff: !mic || mic.muted });
      const scr = bySource('screen');
      if (scr) {
        out.push({ key: `${p.sid}:screen`, self: false, source: 'screen', sid: p.sid,
          name: `${p.name || p.identity} (screen)`, track: remote(scr), camOff: !remote(scr), micOff: false });
      }
    }
    return out;
  }

  render() {
    const want = this.desired();
    const keys = new Set(want.map((w) => w.key));
    for (const [k, t] of this.tiles) {
      if (!keys.has(k)) {
        t.video.srcObject = null;
        t.el.remove();
        this.tiles.delete(k);
      }
    }
    want.forEach((w, i) => {
      let t = this.tiles.get(w.key);
      if (!t) {
        t = makeTile(w);
        this.tiles.set(w.key, t);
      }
      updateTile(t, w);
      if (this.grid.children[i] !== t.el) this.grid.insertBefore(t.el, this.grid.children[i] || null);
    });
    this.renderAudio();
    $('participant-count').textContent = String(this.call.participants.size + 1);
    this.layout();
  }

  renderAudio() {
    const live = new Set();
    for (const [key, track] of this.call.remoteTracks) {
      if (track.kind !== 'audio') continue;
      live.add(key);
      let a = this.audioEls.get(key);
      if (!a) {
        a = document.createElement('audio');
        a.autoplay = true;
        a.dataset.testid = 'remote-audio';
        this.audio.append(a);
        this.audioEls.set(key, a);
      }
      if (!a.srcObject || a.srcObject.getTracks()[0] !== track) {
        a.srcObject = new MediaStream([track]);
        a.play().catch(() => this.blockedAudio());
      }
    }
    for (const [key, a] of this.audioEls) {
      if (!live.has(key)) {
        a.srcObject = null;
        a.remove();
        this.audioEls.delete(key);
      }
    }
  }

  // blockedAudio handles browsers that refuse to autoplay sound before a
  // user gesture: the next click anywhere starts every audio element.
  blockedAudio() {
    if (this.waitingForGesture) return;
    this.waitingForGesture = true;
    this.notice('Click anywhere to enable sound.');
    document.addEventListener('click', () => {
      this.waitingForGesture = false;
      this.notice('');
      for (const a of this.audioEls.values()) a.play().catch(() => {});
    }, { once: true });
  }

  // layout picks the column count and tile width so every tile fits the
  // grid without scrolling, at 16:9.
  layout() {
    const n = this.tiles.size || 1;
    const gap = 10;
    const W = this.grid.clientWidth - 24;
    const H = this.grid.clientHeight - 24;
    let best = { cols: 1, w: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = Math.min((W - gap * (cols - 1)) / cols, ((H - gap * (rows - 1)) / rows) * 16 / 9);
      if (w > best.w) best = { cols, w };
    }
    this.grid.style.setProperty('--cols', String(best.cols));
    this.grid.style.gridTemplateColumns = `repeat(${best.cols}, ${Math.max(160, Math.floor(best.w))}px)`;
    this.grid.style.justifyContent = 'center';
  }
}

function setToggle(btn, dev, name, onTitle, offTitle) {
  const on = !!(dev && dev.enabled);
  btn.disabled = !dev;
  btn.setAttribute('aria-pressed', String(!on));
  btn.title = on ? onTitle : offTitle;
  btn.querySelector('.ico').className = `ico ico-${name}${on ? '' : '-off'}`;
}

function fillSelect(sel, devices, current, fallback) {
  sel.replaceChildren();
  devices.forEach((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || `${fallback} ${i + 1}`;
    o.selected = d.deviceId === current;
    sel.append(o);
  });
}

function makeTile(w) {
  const el = document.createElement('div');
  el.className = 'tile';
  el.dataset.testid = 'tile';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // sound plays through the separate audio elements
  video.dataset.testid = 'tile-video';
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.append(document.createElement('span'));
  const label = document.createElement('div');
  label.className = 'label';
  const micIco = document.createElement('span');
  micIco.className = 'ico ico-mic-off';
  micIco.dataset.testid = 'mic-muted';
  micIco.title = 'Microphone muted';
  const camIco = document.createElement('span');
  camIco.className = 'ico ico-cam-off';
  camIco.dataset.testid = 'cam-muted';
  camIco.title = 'Camera off';
  const nameEl = document.createElement('span');
  nameEl.className = 'name';
  nameEl.dataset.testid = 'tile-name';
  label.append(micIco, camIco, nameEl);
  el.append(video, avatar, label);
  const t = { el, video, avatar, nameEl, micIco, camIco, hasFrames: false, camOff: true };
  // Keep the avatar up until the first frame: a fresh remote video is
  // black for a moment, which looks broken.
  video.addEventListener('loadeddata', () => {
    t.hasFrames = true;
    t.avatar.hidden = !t.camOff;
  });
  return t;
}

function updateTile(t, w) {
  t.el.classList.toggle('self', !!w.self);
  t.el.dataset.participant = w.sid;
  t.el.dataset.source = w.source;
  t.el.dataset.self = String(!!w.self);
  if (t.nameEl.textContent !== w.name) t.nameEl.textContent = w.name;
  t.avatar.firstChild.textContent = (w.name || '?').trim().charAt(0).toUpperCase();
  const current = t.video.srcObject && t.video.srcObject.getVideoTracks()[0];
  if (w.track !== (current || null)) {
    t.hasFrames = false;
    t.video.srcObject = w.track ? new MediaStream([w.track]) : null;
    if (w.track) t.video.play().catch(() => {});
  }
  t.camOff = !!w.camOff;
  t.avatar.hidden = t.hasFrames && !w.camOff;
  t.micIco.hidden = !w.micOff;
  t.camIco.hidden = !w.camOff || w.source === 'screen';
  t.el.dataset.micMuted = String(!!w.micOff);
  t.el.dataset.camMuted = String(!!w.camOff);
}

// roomLabel names a room for people: rooms made for an accepted call
// invitation ("call-<uuid>") are just "Call".
export function roomLabel(room) {
  return room.startsWith('call-') ? 'Call' : room;
}

export function roomFromPath(path = window.location.pathname) {
  const m = /^\/r\/([^/]+)$/.exec(path);
  if (!m) return '';
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return '';
  }
}
