// ModUI is the moderator's side of a call page (docs/protocol.md,
// "Moderation"): the moderator badge, raised hand and mic/camera state of
// each person in the people list, a moderator's actions on each of them
// and on the room (settings included), the lobby's knocks (Admit / Deny /
// Admit all), requests to unmute (Allow to unmute) and the confirm
// dialog of the actions that cannot be undone. Every action is only a
// request: the server decides, and refuses anyone who is not a moderator.

import { $, el } from './dom.js';

export class ModUI {
  // call: the Call; chatUI: the ChatUI whose people list this decorates.
  constructor(call, chatUI) {
    this.call = call;
    this.chatUI = chatUI;
    this.controls = null; // the room controls' buttons, built once
    this.onChange = () => this.render();
    this.pending = null; // the open confirm dialog's resolver
    // asks: identity -> {identity, name, timer} of "unmute_asked" shown.
    this.asks = new Map();
    this.onMessage = (ev) => {
      const m = ev.detail || {};
      if (m.type === 'unmute_asked' && m.data && m.data.identity) this.asked(m.data);
    };
  }

  mount() {
    this.call.addEventListener('moderation', this.onChange);
    this.call.addEventListener('roster', () => this.renderKnocks());
    this.call.addEventListener('message', this.onMessage);
    if (this.chatUI) {
      this.chatUI.decoratePerson = (p, it) => this.person(p, it);
      this.chatUI.renderRoomControls = () => this.roomControls();
      this.chatUI.composerBlock = (convId) => this.composerBlock(convId);
    }
    const dlg = $('confirm');
    dlg.addEventListener('close', () => {
      const done = this.pending;
      this.pending = null;
      if (done) done({ ok: dlg.returnValue === 'ok', ban: $('confirm-ban').checked });
    });
    this.render();
  }

  unmount() {
    this.call.removeEventListener('moderation', this.onChange);
    this.call.removeEventListener('message', this.onMessage);
    for (const a of this.asks.values()) clearTimeout(a.timer);
    this.asks.clear();
    const knocks = $('knocks');
    knocks.replaceChildren();
    knocks.hidden = true;
    const dlg = $('confirm');
    if (dlg.open) dlg.close('cancel');
  }

  render() {
    this.renderKnocks();
    if (this.chatUI) {
      this.chatUI.renderPeople();
      this.chatUI.renderPane();
    }
  }

  // composerBlock: in a room whose chat is for moderators only, the
  // others cannot write in the room's conversation (the server refuses).
  composerBlock(convId) {
    const c = this.call;
    const room = this.chatUI.chat.roomConversationId;
    if (!convId || convId !== room || c.isModerator || c.settings.chat !== 'moderators') return '';
    return 'Only moderators can write here';
  }

  // confirm asks before an action; withBan adds the "ban" checkbox.
  confirm(text, okText, withBan = false) {
    const dlg = $('confirm');
    if (dlg.open) dlg.close('cancel');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okText;
    $('confirm-ban').checked = false;
    $('confirm-ban-row').hidden = !withBan;
    dlg.returnValue = '';
    return new Promise((resolve) => {
      this.pending = resolve;
      dlg.showModal();
    });
  }

  // ----- lobby -----

  renderKnocks() {
    const box = $('knocks');
    const c = this.call;
    const entries = c.isModerator ? [...c.lobby.values()] : [];
    const asks = c.isModerator ? [...this.asks.values()].filter((a) => this.stillMuted(a.identity)) : [];
    box.hidden = entries.length === 0 && asks.length === 0;
    const rows = entries.map((e) => {
      const row = el('div', 'knock', { testid: 'knock' });
      row.dataset.lobbyId = e.lobbyId;
      row.dataset.identity = e.identity;
      const text = el('span', 'knock-text', { testid: 'knock-text', text: `${e.name || e.identity} wants to join` });
      const admit = el('button', 'small primary-small', { testid: 'knock-admit', type: 'button', text: 'Admit' });
      admit.addEventListener('click', () => c.moderate('lobby_admit', { lobbyId: e.lobbyId }));
      const deny = el('button', 'small', { testid: 'knock-deny', type: 'button', text: 'Deny' });
      deny.addEventListener('click', () => c.moderate('lobby_deny', { lobbyId: e.lobbyId }));
      row.append(text, admit, deny);
      return row;
    });
    if (entries.length > 1) {
      const all = el('button', 'small primary-small', { testid: 'knock-admit-all', type: 'button', text: `Admit all (${entries.length})` });
      all.addEventListener('click', () => c.moderate('lobby_admit_all'));
      rows.push(all);
    }
    for (const a of asks) rows.push(this.askRow(a));
    box.replaceChildren(...rows);
  }

  // ----- asks to unmute -----

  // stillMuted: the asker is in the room with its microphone muted (an
  // ask another moderator answered, or one that left, goes away).
  stillMuted(identity) {
    const p = [...this.call.participants.values()].find((x) => x.identity === identity);
    const mic = p && (p.tracks || []).find((t) => t.source === 'microphone');
    return !!p && (!mic || !!mic.muted);
  }

  // asked shows a participant's request to unmute until a moderator
  // answers it, dismisses it, or a minute passes.
  asked({ identity, name }) {
    const old = this.asks.get(identity);
    if (old) clearTimeout(old.timer);
    const timer = setTimeout(() => this.dropAsk(identity), 60000);
    this.asks.set(identity, { identity, name, timer });
    this.renderKnocks();
  }

  dropAsk(identity) {
    const a = this.asks.get(identity);
    if (!a) return;
    clearTimeout(a.timer);
    this.asks.delete(identity);
    this.renderKnocks();
  }

  askRow(a) {
    const row = el('div', 'knock', { testid: 'unmute-ask' });
    row.dataset.identity = a.identity;
    const text = el('span', 'knock-text', { testid: 'unmute-ask-text', text: `${a.name || a.identity} asks to unmute` });
    const allow = el('button', 'small primary-small', { testid: 'unmute-ask-allow', type: 'button', text: 'Allow to unmute' });
    allow.addEventListener('click', () => {
      this.call.moderate('mod_allow_unmute', { identity: a.identity });
      this.dropAsk(a.identity);
    });
    const dismiss = el('button', 'small', { testid: 'unmute-ask-dismiss', type: 'button', text: 'Dismiss' });
    dismiss.addEventListener('click', () => this.dropAsk(a.identity));
    row.append(text, allow, dismiss);
    return row;
  }

  // ----- people -----

  // person shows p's role and mic/camera state, and a moderator's
  // actions on p, in the people list item it (chat-ui.js).
  person(p, it) {
    const c = this.call;
    const tracks = p.tracks || [];
    const has = (src) => tracks.find((t) => t.source === src);
    const mic = has('microphone');
    const cam = has('camera');
    const screen = has('screen');
    const badges = [];
    if (p.handRaised) badges.push(el('span', 'person-hand', { testid: 'person-hand', role: 'img', 'aria-label': 'Hand raised', title: 'Hand raised', text: '✋' }));
    if (p.moderator) badges.push(el('span', 'badge-mod', { testid: 'person-moderator', text: 'Moderator' }));
    const micOff = !mic || mic.muted;
    const camOff = !cam || cam.muted;
    badges.push(el('span', `ico ico-mic${micOff ? '-off' : ''}`, { testid: 'person-mic', title: micOff ? 'Microphone off' : 'Microphone on' }));
    badges.push(el('span', `ico ico-cam${camOff ? '-off' : ''}`, { testid: 'person-cam', title: camOff ? 'Camera off' : 'Camera on' }));
    it.badges.replaceChildren(...badges);
    it.li.dataset.moderator = String(!!p.moderator);
    it.li.dataset.micMuted = String(micOff);
    it.li.dataset.camMuted = String(camOff);
    it.li.dataset.handRaised = String(!!p.handRaised);

    if (!c.isModerator) {
      if (it.mod) it.mod.details.hidden = true;
      return;
    }
    if (!it.mod) it.mod = this.personActions(p.identity, it);
    const m = it.mod;
    m.details.hidden = false;
    m.mute.disabled = micOff;
    m.camera.disabled = camOff;
    m.screen.disabled = !screen || !!screen.muted;
    m.allow.hidden = !c.settings.moderatorsUnmuteOnly;
    m.lower.hidden = !p.handRaised;
    m.role.textContent = p.moderator ? 'Remove moderator' : 'Make moderator';
    m.role.dataset.moderator = String(!!p.moderator);
  }

  personActions(identity, it) {
    const c = this.call;
    const details = el('details', 'person-mod', { testid: 'person-actions' });
    const summary = el('summary', '', { testid: 'person-actions-toggle', text: 'Manage' });
    const btn = (testid, text, onClick) => {
      const b = el('button', 'small', { testid, type: 'button', text });
      b.addEventListener('click', onClick);
      return b;
    };
    const name = () => it.name.textContent || identity;
    const mute = btn('mod-mute', 'Mute mic', () => c.moderate('mod_mute', { identity, source: 'microphone' }));
    const camera = btn('mod-camera', 'Stop camera', () => c.moderate('mod_mute', { identity, source: 'camera' }));
    const screen = btn('mod-screen', 'Stop screen', () => c.moderate('mod_mute', { identity, source: 'screen' }));
    const allow = btn('mod-allow-unmute', 'Allow to unmute', () => c.moderate('mod_allow_unmute', { identity }));
    const lower = btn('mod-lower-hand', 'Lower hand', () => c.moderate('mod_lower_hand', { identity }));
    const role = btn('mod-role', 'Make moderator', () => c.moderate('mod_role', { identity, moderator: role.dataset.moderator !== 'true' }));
    const remove = btn('mod-remove', 'Remove', async () => {
      const { ok, ban } = await this.confirm(`Remove ${name()} from the meeting?`, 'Remove', true);
      if (ok) c.moderate('mod_remove', { identity, ban });
    });
    remove.classList.add('danger-small');
    const row = el('div', 'mod-actions');
    row.append(lower, mute, camera, screen, allow, role, remove);
    details.append(summary, row);
    it.extra.append(details);
    return { details, mute, camera, screen, allow, lower, role, remove };
  }

  // ----- room -----

  roomControls() {
    const box = this.chatUI.roomControls;
    const c = this.call;
    box.hidden = !c.isModerator;
    if (!c.isModerator) return;
    if (!this.controls) this.controls = this.buildControls(box);
    const s = c.settings;
    const k = this.controls;
    k.lock.textContent = s.locked ? 'Unlock meeting' : 'Lock meeting';
    k.lock.setAttribute('aria-pressed', String(!!s.locked));
    k.lobby.textContent = s.lobby ? 'Turn lobby off' : 'Turn lobby on';
    k.lobby.setAttribute('aria-pressed', String(!!s.lobby));
    k.unmute.textContent = s.moderatorsUnmuteOnly ? 'Moderators unmute only: on' : 'Moderators unmute only: off';
    k.unmute.setAttribute('aria-pressed', String(!!s.moderatorsUnmuteOnly));
    const modsOnly = (v) => v === 'moderators';
    k.screen.textContent = modsOnly(s.screenShare) ? 'Screen sharing: moderators only' : 'Screen sharing: everyone';
    k.screen.setAttribute('aria-pressed', String(modsOnly(s.screenShare)));
    k.chat.textContent = modsOnly(s.chat) ? 'Chat: moderators only' : 'Chat: everyone';
    k.chat.setAttribute('aria-pressed', String(modsOnly(s.chat)));
    if (document.activeElement !== k.max) k.max.value = String(s.maxParticipants || 0);
  }

  buildControls(box) {
    const c = this.call;
    const btn = (testid, text, onClick) => {
      const b = el('button', 'small', { testid, type: 'button', text });
      b.addEventListener('click', onClick);
      return b;
    };
    const head = el('h3', 'people-head', { text: 'Meeting controls' });
    const muteAll = btn('mod-mute-all', 'Mute everyone', () => c.moderate('mod_mute_all'));
    const lock = btn('mod-lock', 'Lock meeting', () => c.moderate('room_settings', { locked: !c.settings.locked }));
    const lobby = btn('mod-lobby', 'Turn lobby on', () => c.moderate('room_settings', { lobby: !c.settings.lobby }));
    const unmute = btn('mod-unmute-only', 'Moderators unmute only: off', () => c.moderate('room_settings', { moderatorsUnmuteOnly: !c.settings.moderatorsUnmuteOnly }));
    const flip = (v) => (v === 'moderators' ? 'everyone' : 'moderators');
    const screen = btn('mod-screen-share', 'Screen sharing: everyone', () => c.moderate('room_settings', { screenShare: flip(c.settings.screenShare) }));
    const chat = btn('mod-chat', 'Chat: everyone', () => c.moderate('room_settings', { chat: flip(c.settings.chat) }));
    // The cap: 0 is none beyond the server's own (docs/protocol.md).
    const capForm = el('form', 'mod-cap', { testid: 'mod-max-form' });
    const capLabel = el('label', '', { for: 'mod-max', text: 'Max participants (0: no limit)' });
    const max = el('input', '', { id: 'mod-max', testid: 'mod-max', type: 'number', min: '0', max: '10000', step: '1', inputmode: 'numeric' });
    const setCap = el('button', 'small', { testid: 'mod-max-set', type: 'submit', text: 'Set' });
    capForm.append(capLabel, max, setCap);
    capForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const n = Number(max.value);
      if (!Number.isInteger(n) || n < 0 || n > 10000) {
        c.emit('notice', 'Max participants is a whole number from 0 (no limit) to 10000.');
        return;
      }
      c.moderate('room_settings', { maxParticipants: n });
      max.blur();
    });
    const end = btn('mod-end', 'End meeting for all', async () => {
      const { ok } = await this.confirm('End the meeting for everyone?', 'End meeting');
      if (ok) c.moderate('end_meeting');
    });
    end.classList.add('danger-small');
    const row = el('div', 'mod-actions');
    row.append(muteAll, lock, lobby, unmute, screen, chat, end);
    box.replaceChildren(head, row, capForm);
    return { muteAll, lock, lobby, unmute, screen, chat, max, end };
  }
}
