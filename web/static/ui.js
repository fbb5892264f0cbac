// UI renders a Call into the page: the participant grid, the status pill
// and the control bar. Rendering is keyed reconciliation: tiles are kept
// across updates so a video never restarts because someone else changed.

import { $, el, showPill } from './dom.js';
import { ViewReporter } from './views.js';
import { planLayout, PHONE_WIDTH } from './layout.js';
import { TileMenu } from './tile-menu.js';

export class UI {
  // speaker: the audio output device id ('' the default); remember(kind,
  // deviceId) keeps a device picked in the call for the next one.
  constructor(call, { speaker = '', remember = () => {} } = {}) {
    this.call = call;
    this.speaker = speaker;
    this.remember = remember;
    this.grid = $('grid');
    this.views = new ViewReporter(() => this.call.sig);
    this.tiles = new Map(); // key -> {el, video, nameEl, micIco, camIco, avatar}
    this.audio = document.createElement('div');
    this.audio.hidden = true;
    document.body.append(this.audio);
    this.audioEls = new Map(); // `${participant}|${trackSid}` -> <audio>
    this.onResize = () => this.layout();
    // Layout (layout.js): the chosen mode, the pinned tile key, the last
    // other person the server named as the active speaker, and each
    // person's voice volume in this browser (participant sid -> 0..1).
    this.mode = 'auto';
    this.pinned = '';
    this.activeSpeaker = '';
    this.active = ''; // the server's current active speaker, maybe us
    this.volumes = new Map();
    this.descs = [];
    this.moreEl = null;
    this.onKey = (ev) => {
      if (ev.key !== 'Escape') return;
      if (this.closeMenus(true)) ev.preventDefault();
    };
    this.onDocClick = () => this.closeMenus(false);
  }

  mount() {
    const c = this.call;
    $('room-name').textContent = roomLabel(c.room || roomFromPath() || '');
    c.addEventListener('status', (ev) => this.showStatus(ev.detail));
    c.addEventListener('roster', () => this.render());
    c.addEventListener('local', () => { this.render(); this.renderControls(); });
    c.addEventListener('notice', (ev) => this.notice(ev.detail));
    c.addEventListener('moderation', () => this.renderControls());
    // `speakers` comes from servers that select the active speaker
    // (docs/protocol.md); without it the speaker layout shows the first
    // other person.
    c.addEventListener('message', (ev) => {
      if (ev.detail && ev.detail.type === 'speakers') this.onSpeakers(ev.detail.data || {});
    });
    $('layout-btn').onclick = (ev) => {
      ev.stopPropagation();
      this.setLayoutMenu($('layout-menu').hidden);
    };
    $('layout-menu').onclick = (ev) => ev.stopPropagation();
    for (const r of document.querySelectorAll('input[name="layout"]')) {
      r.checked = r.value === this.mode;
      r.onchange = () => { this.mode = r.value; this.pinned = ''; this.render(); };
    }
    document.addEventListener('keydown', this.onKey);
    document.addEventListener('click', this.onDocClick);
    c.addEventListener('retry', (ev) => {
      this.grid.classList.add('stale');
      this.notice(`Connection lost, reconnecting (attempt ${ev.detail.attempt})…`);
    });
    $('media-retry').onclick = () => this.retryMedia();
    $('mic-btn').onclick = () => c.setMuted('microphone', this.isOn('microphone'));
    $('cam-btn').onclick = () => c.setMuted('camera', this.isOn('camera'));
    $('screen-btn').onclick = () => this.toggleScreen();
    $('devices-btn').onclick = () => this.toggleDevices();
    $('leave-btn').onclick = () => c.leave();
    $('lobby-leave').onclick = () => c.leave();
    $('cam-select').onchange = (ev) => this.pickDevice('videoinput', ev.target.value);
    $('mic-select').onchange = (ev) => this.pickDevice('audioinput', ev.target.value);
    $('spk-select').onchange = (ev) => this.setSpeaker(ev.target.value);
    window.addEventListener('resize', this.onResize);
    this.showStatus({ status: c.status });
    this.renderControls();
    this.render();
  }

  unmount() {
    this.mediaProblem('');
    this.grid.classList.remove('stale');
    window.removeEventListener('resize', this.onResize);
    document.removeEventListener('keydown', this.onKey);
    document.removeEventListener('click', this.onDocClick);
    this.setLayoutMenu(false);
    if (this.moreEl) this.moreEl.remove();
    for (const a of this.audioEls.values()) a.srcObject = null;
    this.audio.remove();
    this.showLobby(false);
    this.views.close();
    for (const t of this.tiles.values()) t.el.remove();
    this.tiles.clear();
  }

  isOn(source) {
    const d = this.call.media.describe()[source];
    return !!(d && d.enabled);
  }

  showStatus({ status, detail }) {
    showPill($('conn-status'), status);
    // While the connection is down the tiles show who was there, dimmed,
    // with their last known camera state (not "camera off").
    this.grid.classList.toggle('stale', status === 'reconnecting' && !this.call.session);
    this.showLobby(status === 'waiting');
    if (detail) this.notice(detail);
    else if (status === 'connected') this.notice('');
    if (this.call.room) $('room-name').textContent = roomLabel(this.call.room);
  }

  // showLobby covers the call with the lobby's waiting screen (with the
  // user's own camera as a preview) while the host has not let us in.
  showLobby(on) {
    const box = $('lobby-wait');
    if (box.hidden === !on) return;
    box.hidden = !on;
    const preview = $('lobby-preview');
    const cam = on && this.call.media.cam ? this.call.media.cam.track : null;
    preview.srcObject = cam ? new MediaStream([cam]) : null;
    preview.hidden = !cam;
    const name = this.call.name || tokenName(this.call.token) || 'Guest';
    $('lobby-name').textContent = on ? `You are joining as ${name}.` : '';
  }

  // mediaProblem shows, until fixed, why camera and microphone are not
  // in use and how to allow them; Retry asks again. The status pill and
  // other notices never clear it.
  mediaProblem(text) {
    const box = $('media-notice');
    $('media-notice-text').textContent = text || '';
    box.hidden = !text;
    this.layout();
  }

  async retryMedia() {
    const btn = $('media-retry');
    btn.disabled = true;
    try {
      if (await this.call.retryMedia()) this.mediaProblem('');
    } catch (err) {
      this.notice(`Cannot send your camera and microphone: ${err.message || err}`);
    } finally {
      btn.disabled = false;
      this.renderControls();
    }
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
    const mic = $('mic-btn');
    const locked = this.call.micLocked && !!d.microphone && !d.microphone.enabled;
    mic.dataset.locked = String(locked);
    if (locked) {
      mic.disabled = true;
      mic.title = 'A moderator muted you: only a moderator can unmute your microphone';
    }
    mic.querySelector('.txt').textContent = locked ? 'Muted by host' : 'Mic';
    setToggle($('cam-btn'), d.camera, 'cam', 'Turn camera off', 'Turn camera on');
    const sharing = !!d.screen;
    const sb = $('screen-btn');
    sb.setAttribute('aria-pressed', String(sharing));
    sb.title = sharing ? 'Stop sharing' : 'Share screen';
    sb.querySelector('.txt').textContent = sharing ? 'Stop' : 'Share';
    const canPublish = !this.call.grants || this.call.grants.publish !== false;
    sb.disabled = !canPublish || !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
    if (!sharing && !this.call.mayShareScreen) { // room setting (mod-ui.js)
      sb.disabled = true;
      sb.title = 'Only moderators can share their screen in this meeting';
    }
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
      const { cameras, mics, speakers } = await this.call.media.devices();
      fillSelect($('cam-select'), cameras, this.call.media.currentDevice('videoinput'), 'Camera');
      fillSelect($('mic-select'), mics, this.call.media.currentDevice('audioinput'), 'Microphone');
      const spk = canPickSpeaker() && speakers.length > 0;
      $('spk-select').hidden = !spk;
      $('spk-label').hidden = !spk;
      if (spk) fillSelect($('spk-select'), speakers, this.speaker || speakers[0].deviceId, 'Speaker');
    } catch (err) {
      this.notice(`Cannot list devices: ${err.message || err}`);
    }
  }

  async pickDevice(kind, deviceId) {
    if (!deviceId) return;
    try {
      await this.call.switchDevice(kind, deviceId);
      this.remember(kind === 'videoinput' ? 'camera' : 'microphone', deviceId);
    } catch (err) {
      this.notice(`Cannot switch device: ${err.message || err}`);
    }
  }

  // setSpeaker plays every remote voice on the audio output deviceId
  // (where the browser lets a page choose: setSinkId).
  setSpeaker(deviceId) {
    this.speaker = deviceId;
    this.remember('speaker', deviceId);
    for (const a of this.audioEls.values()) this.applySpeaker(a);
  }

  applySpeaker(a) {
    if (!canPickSpeaker() || (a.sinkId || '') === (this.speaker || '')) return;
    a.setSinkId(this.speaker || '').catch((err) => this.notice(`Cannot use that speaker: ${err.message || err}`));
  }

  // desired computes the tiles the grid should show, in order.
  desired() {
    const c = this.call;
    const m = c.media.describe();
    const selfName = (c.self && c.self.name) || c.name || 'You';
    const selfIdentity = c.self ? c.self.identity : '';
    const out = [{
      key: 'self', self: true, source: 'camera', sid: c.self ? c.self.sid : '', identity: selfIdentity,
      name: `${selfName} (you)`, track: m.camera && m.camera.live ? c.media.cam.track : null,
      camOff: !m.camera || !m.camera.enabled, micOff: !m.microphone || !m.microphone.enabled,
    }];
    if (c.media.screen) {
      out.push({ key: 'self:screen', self: false, ownScreen: true, source: 'screen', sid: out[0].sid, identity: selfIdentity,
        name: `${selfName} (you, screen)`, track: c.media.screen.track, camOff: false, micOff: false });
    }
    for (const p of c.participants.values()) {
      const tracks = p.tracks || [];
      const bySource = (src) => tracks.find((t) => t.source === src);
      const remote = (t) => (t ? c.remoteTracks.get(`${p.sid}|${t.sid}`) || null : null);
      // A video that arrived before its participant_updated is the camera.
      let camTrack = remote(bySource('camera'));
      const cam = bySource('camera');
      let camSid = cam ? cam.sid : '';
      if (!camTrack) {
        for (const [k, tr] of c.remoteTracks) {
          if (k.startsWith(`${p.sid}|`) && tr.kind === 'video' && !tracks.some((t) => `${p.sid}|${t.sid}` === k)) {
            camTrack = tr;
            camSid = k.slice(p.sid.length + 1);
          }
        }
      }
      const mic = bySource('microphone');
      // Ingest streams (OBS) are marked, with any problem the server
      // reports (for example audio unavailable) in the label.
      let name = p.name || p.identity || 'Guest';
      if (p.stream) name = `${name} (live stream${p.notice ? `, ${p.notice}` : ''})`;
      out.push({ key: p.sid, self: false, source: 'camera', sid: p.sid, identity: p.identity, name, hasVoice: !!mic,
        track: camTrack, trackSid: camTrack ? camSid : '', camOff: !cam || cam.muted || !camTrack, micOff: !mic || mic.muted });
      const scr = bySource('screen');
      if (scr) {
        out.push({ key: `${p.sid}:screen`, self: false, source: 'screen', sid: p.sid, identity: p.identity,
          name: `${p.name || p.identity} (screen)`, track: remote(scr), trackSid: remote(scr) ? scr.sid : '', camOff: !remote(scr), micOff: false });
      }
    }
    return out;
  }

  render() {
    const want = this.desired();
    this.descs = want;
    if (this.pinned && !want.some((w) => w.key === this.pinned)) this.pinned = ''; // they left
    const keys = new Set(want.map((w) => w.key));
    for (const [k, t] of this.tiles) {
      if (!keys.has(k)) {
        t.video.srcObject = null;
        this.views.unwatch(t.video);
        t.el.remove();
        this.tiles.delete(k);
      }
    }
    want.forEach((w, i) => {
      let t = this.tiles.get(w.key);
      if (!t) {
        t = makeTile(w);
        const key = w.key;
        t.menu = new TileMenu(t.el, {
          pin: () => { this.pinned = this.pinned === key ? '' : key; this.render(); },
          fullscreen: () => this.fullscreen(key),
          volume: (v) => this.setVolume(this.tiles.get(key).sid, v),
        });
        this.tiles.set(w.key, t);
      }
      updateTile(t, w);
      t.sid = w.sid;
      t.menu.update({ name: w.name, pinned: this.pinned === w.key, volume: this.volumeOf(w.sid), hasVoice: !!w.hasVoice });
      this.views.watch(t.video, w.self ? '' : w.trackSid || '');
      if (this.grid.children[i] !== t.el) this.grid.insertBefore(t.el, this.grid.children[i] || null);
    });
    this.renderAudio();
    const n = this.call.participants.size + 1;
    $('participant-count').textContent = String(n);
    // The name starts with what is shown ("3"), then says what it does.
    $('people-btn').setAttribute('aria-label', `${n} in call: show the people`);
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
        a.dataset.participant = key.split('|')[0];
        this.audio.append(a);
        this.audioEls.set(key, a);
        this.applySpeaker(a);
      }
      a.volume = this.volumeOf(key.split('|')[0]);
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

  // layout places every tile where layout.js says (absolute positions in
  // the grid area), marks the active speaker and the large tile.
  layout() {
    const phone = window.innerWidth < PHONE_WIDTH;
    const pad = phone ? 6 : 12;
    const width = this.grid.clientWidth - 2 * pad;
    const height = this.grid.clientHeight - 2 * pad;
    if (width <= 0 || height <= 0) return;
    const tiles = this.descs.filter((d) => this.tiles.has(d.key));
    const plan = planLayout({ tiles, mode: this.mode, pinned: this.pinned, active: this.activeSpeaker, width, height });
    this.grid.dataset.layout = plan.mode;
    for (const d of tiles) {
      const t = this.tiles.get(d.key);
      const r = plan.rects.get(d.key);
      t.el.hidden = r.hidden;
      t.el.dataset.role = r.role;
      place(t.el, r, pad);
      t.el.classList.toggle('speaking', !!this.active && d.identity === this.active && d.source === 'camera');
    }
    if (plan.more) {
      if (!this.moreEl) {
        this.moreEl = el('button', 'tile-more-people', { type: 'button', testid: 'strip-more' });
        this.moreEl.onclick = () => { this.pinned = ''; this.mode = 'grid'; this.syncLayoutMenu(); this.render(); };
        this.grid.append(this.moreEl);
      }
      this.moreEl.textContent = `+${plan.more}`;
      this.moreEl.setAttribute('aria-label', `${plan.more} more: show everyone in a grid`);
      place(this.moreEl, plan.moreRect, pad);
      this.moreEl.hidden = false;
    } else if (this.moreEl) {
      this.moreEl.hidden = true;
    }
  }

  // onSpeakers takes the server's `speakers` event: the active speaker is
  // highlighted, and large in the speaker layout unless it is us (then the
  // last other speaker stays).
  onSpeakers(d) {
    this.active = typeof d.active === 'string' ? d.active : '';
    const me = this.call.self ? this.call.self.identity : '';
    if (this.active && this.active !== me) this.activeSpeaker = this.active;
    this.layout();
  }

  setLayoutMenu(open) {
    $('layout-menu').hidden = !open;
    $('layout-btn').setAttribute('aria-expanded', String(open));
    if (open) this.syncLayoutMenu();
  }

  syncLayoutMenu() {
    for (const r of document.querySelectorAll('input[name="layout"]')) r.checked = r.value === this.mode;
  }

  // closeMenus closes the layout menu and any tile menu; true when one
  // was open (Escape is then used up). refocus: put focus back on the
  // menu's button (Escape), not when a click elsewhere closed it.
  closeMenus(refocus) {
    let closed = false;
    if (!$('layout-menu').hidden) {
      this.setLayoutMenu(false);
      if (refocus) $('layout-btn').focus();
      closed = true;
    }
    for (const t of this.tiles.values()) {
      if (t.menu.open) {
        t.menu.setOpen(false);
        if (refocus) t.menu.button.focus();
        closed = true;
      }
    }
    return closed;
  }

  fullscreen(key) {
    const t = this.tiles.get(key);
    if (!t || !t.el.requestFullscreen) return;
    t.el.requestFullscreen().catch((err) => this.notice(`Cannot show fullscreen: ${err.message || err}`));
  }

  volumeOf(sid) {
    const v = this.volumes.get(sid);
    return v === undefined ? 1 : v;
  }

  // setVolume sets how loud a person's voice plays here (not for others).
  setVolume(sid, v) {
    this.volumes.set(sid, Math.min(1, Math.max(0, v)));
    for (const [key, a] of this.audioEls) {
      if (key.startsWith(`${sid}|`)) a.volume = this.volumeOf(sid);
    }
  }

}

// place puts an absolutely positioned element at rect r, offset by the
// grid's padding.
function place(e, r, pad) {
  e.style.left = `${r.x + pad}px`;
  e.style.top = `${r.y + pad}px`;
  e.style.width = `${r.w}px`;
  e.style.height = `${r.h}px`;
}

function setToggle(btn, dev, name, onTitle, offTitle) {
  const on = !!(dev && dev.enabled);
  btn.disabled = !dev;
  btn.setAttribute('aria-pressed', String(!on));
  btn.title = on ? onTitle : offTitle;
  btn.querySelector('.ico').className = `ico ico-${name}${on ? '' : '-off'}`;
}

// canPickSpeaker: the browser lets a page choose the audio output.
export const canPickSpeaker = () => typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

export function fillSelect(sel, devices, current, fallback) {
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
  const box = document.createElement('div');
  box.className = 'tile';
  box.dataset.testid = 'tile';
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
  box.append(video, avatar, label);
  const t = { el: box, video, avatar, nameEl, micIco, camIco, hasFrames: false, camOff: true };
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
  t.el.setAttribute('role', 'group');
  t.el.setAttribute('aria-label', w.name);
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

// tokenName reads the display name claim of a JWT without verifying it
// (the server does); '' when unreadable.
function tokenName(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    return typeof claims.name === 'string' ? claims.name : '';
  } catch {
    return '';
  }
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
