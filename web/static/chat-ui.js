// ChatUI renders a Chat into a container: the conversations list (unread
// badges, presence dots, "new chat" by identity) and one conversation
// (messages with pending/failed/sent/delivered/read marks, call entries,
// scroll-back, typing line, composer). In 'split' mode both show side by
// side (the /chat page); in 'panel' mode (beside the video grid) one at a
// time, starting with the room's conversation.

import { el } from './dom.js';
import { linkedText } from './linkify.js';
import { autoGrow } from './autogrow.js';
import { reactionBar } from './chat-reactions-ui.js';
import { reactionsKey } from './chat-reactions.js';

const STATUS_MARK = { sent: '✓', delivered: '✓✓', read: '✓✓', pending: '…', failed: 'Not sent' };
const STATUS_TITLE = { sent: 'Sent', delivered: 'Delivered', read: 'Read', pending: 'Sending', failed: 'Not sent' };
const PRESENCE_TITLE = { online: 'Online', in_call: 'In a call', offline: 'Offline' };

function clock(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class ChatUI {
  // root: container element; chat: Chat; calls: Calls or null (no call
  // buttons); mode: 'split' or 'panel'. roster (panel mode): the Call,
  // whose participants are offered as "People in this call".
  constructor({ root, chat, calls = null, mode = 'split', roster = null }) {
    this.root = root;
    this.chat = chat;
    this.calls = calls;
    this.mode = mode;
    this.roster = roster;
    // decoratePerson(participant, item) and renderRoomControls(), when
    // set, add the moderation state and actions to the people list.
    this.decoratePerson = null;
    this.renderRoomControls = null;
    this.composerBlock = null;
    this.selected = '';
    this.showingList = mode === 'split';
    this.open = true; // panel mode: whether the panel is shown at all
    this.items = new Map(); // message key -> {el, sig}
    // editing: the own message being edited ({key, seq, input}); its input
    // survives re-renders so typing is never lost.
    this.editing = null;
    this.listItems = new Map(); // conversation id -> {li, dot, title, preview, badge}
    this.renderedFor = '';
    this.build();
    chat.addEventListener('change', () => this.render());
    document.addEventListener('visibilitychange', () => this.updateVisible());
    // Render once now: until the first change (the join takes a moment)
    // the pane must already be the "pick a conversation" prompt alone.
    this.render();
  }

  build() {
    const r = el('div', `chat chat-${this.mode}`, { testid: 'chat' });
    const list = el('section', 'chat-list', { testid: 'conv-list' });
    const form = el('form', 'new-chat', { testid: 'new-chat-form' });
    this.newInput = el('input', '', { testid: 'new-chat-input', placeholder: 'Name, or names for a group', maxlength: '2048', autocomplete: 'off', list: `known-people-${this.mode}`, 'aria-label': 'Who to message: a name, or several separated by commas for a group', title: 'One person opens a direct chat; several, separated by commas, make a group. Names are those of people in your chats or in this call.' });
    this.knownList = el('datalist', '', { id: `known-people-${this.mode}` });
    const newBtn = el('button', 'small', { testid: 'new-chat-button', type: 'submit', text: 'Open' });
    form.append(this.newInput, newBtn, this.knownList);
    form.addEventListener('submit', (ev) => { ev.preventDefault(); this.openDirect(); });
    this.newError = el('p', 'error small-error', { testid: 'new-chat-error', role: 'alert' });
    this.newError.hidden = true;
    this.convList = el('ul', 'convs');
    this.empty = el('p', 'muted empty', { text: 'No conversations yet.' });
    // People in the call (panel mode): message someone by picking them,
    // no identity to know or type.
    this.peopleHead = el('h3', 'people-head', { text: 'People in this call' });
    this.peopleList = el('ul', 'people', { testid: 'people' });
    this.peopleItems = new Map();
    this.peopleHead.hidden = true;
    // Room controls for a moderator (mod-ui.js fills them).
    this.roomControls = el('div', 'room-controls', { testid: 'room-controls' });
    this.roomControls.hidden = true;
    list.append(form, this.newError, this.convList, this.empty, this.peopleHead, this.peopleList, this.roomControls);
    if (this.roster) this.roster.addEventListener('roster', () => this.renderPeople());

    const pane = el('section', 'chat-pane', { testid: 'chat-pane' });
    const head = el('header', 'pane-head');
    this.backBtn = el('button', 'icon-btn back-btn', { testid: 'back-button', type: 'button', title: 'All conversations', 'aria-label': 'All conversations', text: '‹' });
    this.backBtn.addEventListener('click', () => { this.showingList = true; this.select(''); });
    this.headDot = el('span', 'presence', { testid: 'pane-presence' });
    this.title = el('div', 'pane-title', { testid: 'pane-title' });
    this.callBtn = el('button', 'small primary-small', { testid: 'call-button', type: 'button', text: 'Call' });
    this.callBtn.addEventListener('click', () => this.placeCall());
    head.append(this.backBtn, this.headDot, this.title, this.callBtn);
    this.scroller = el('div', 'messages', { testid: 'message-list' });
    this.olderBtn = el('button', 'link-btn', { testid: 'load-older', type: 'button', text: 'Load earlier messages' });
    this.olderBtn.addEventListener('click', () => this.chat.loadOlder(this.selected));
    this.msgs = el('div', 'msgs');
    this.noMessages = el('p', 'muted pane-note', { testid: 'no-messages', text: 'No messages yet.' });
    this.scroller.append(this.olderBtn, this.noMessages, this.msgs);
    this.scroller.addEventListener('scroll', () => {
      if (this.scroller.scrollTop < 24 && this.selected) this.chat.loadOlder(this.selected);
    });
    this.typingLine = el('div', 'typing', { testid: 'typing-indicator', 'aria-live': 'polite' });
    const composer = el('form', 'composer', { testid: 'composer' });
    this.input = el('textarea', '', { testid: 'composer-input', rows: '1', maxlength: '4096', placeholder: 'Write a message', 'aria-label': 'Message' });
    const send = el('button', 'small primary-small', { testid: 'composer-send', type: 'submit', text: 'Send' });
    this.sendBtn = send;
    composer.append(this.input, send);
    // The composer grows with what is typed up to about six lines
    // (style.css's max-height), then scrolls.
    this.grow = autoGrow(this.input, 120);
    composer.addEventListener('submit', (ev) => { ev.preventDefault(); this.sendMessage(); });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.sendMessage();
      }
    });
    this.input.addEventListener('input', () => { if (this.selected && this.input.value) this.chat.typing(this.selected); });
    this.placeholder = el('p', 'muted pane-empty', { testid: 'pick-conversation', text: 'Pick a conversation, or message someone by their name.' });
    pane.append(head, this.scroller, this.typingLine, composer, this.placeholder);
    this.pane = pane;
    this.list = list;
    r.append(list, pane);
    this.root.replaceChildren(r);
    this.el = r;
  }

  // known maps the names of people this page knows (the call's roster,
  // the members of the user's chats) to their identities.
  known() {
    const out = new Map();
    const me = this.chat.self ? this.chat.self.identity : '';
    for (const [id, name] of this.chat.people.names) if (id !== me) out.set(name, id);
    if (this.roster) for (const p of this.roster.participants.values()) if (p.identity !== me) out.set(p.name || p.identity, p.identity);
    return out;
  }

  // resolve turns what the user typed into an identity: a known name
  // (any case), else the text itself (an identity the server checks).
  resolve(text, known) {
    const lower = text.toLowerCase();
    for (const [name, id] of known) if (name.toLowerCase() === lower) return id;
    return text;
  }

  renderKnown() {
    const names = [...this.known().keys()].sort();
    if (names.join('\n') === this.knownNames) return;
    this.knownNames = names.join('\n');
    this.knownList.replaceChildren(...names.map((n) => el('option', '', { value: n })));
  }

  // renderPeople lists the others in the call, each with "Message".
  renderPeople() {
    if (!this.roster) return;
    const me = this.chat.self ? this.chat.self.identity : '';
    const others = [...this.roster.participants.values()].filter((p) => p.identity && p.identity !== me && !p.stream);
    const keep = new Map();
    const items = others.map((p) => {
      let it = this.peopleItems.get(p.identity);
      if (!it) {
        const li = el('li', 'person', { testid: 'person' });
        li.dataset.identity = p.identity;
        const name = el('span', 'person-name', { testid: 'person-name' });
        const badges = el('span', 'person-badges', { testid: 'person-badges' });
        const btn = el('button', 'small', { testid: 'person-message', type: 'button', text: 'Message' });
        btn.addEventListener('click', () => this.messagePerson(p.identity));
        const extra = el('div', 'person-extra');
        li.append(name, badges, btn, extra);
        it = { li, name, badges, btn, extra };
      }
      setText(it.name, p.name || 'Guest');
      if (this.decoratePerson) this.decoratePerson(p, it);
      it.btn.setAttribute('aria-label', `Message ${p.name || 'Guest'} privately`);
      keep.set(p.identity, it);
      return it.li;
    });
    this.peopleItems = keep;
    this.peopleHead.hidden = items.length === 0;
    this.peopleList.replaceChildren(...items);
    if (this.renderRoomControls) this.renderRoomControls();
    this.renderKnown();
  }

  async messagePerson(identity) {
    this.newError.hidden = true;
    try {
      const convId = await this.chat.openDirect(identity);
      this.showingList = false;
      this.select(convId);
      this.input.focus();
    } catch (err) {
      this.newError.textContent = err.message || String(err);
      this.newError.hidden = false;
    }
  }

  // openDirect opens a direct chat with one person, or makes a group
  // when several are given (comma-separated); the group's title lists
  // its members, the user first. People are named as the page knows
  // them; anything else goes to the server as an identity, which refuses
  // one nobody has used.
  async openDirect() {
    const me = this.chat.self ? this.chat.self.identity : '';
    const known = this.known();
    const ids = [...new Set(this.newInput.value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => this.resolve(s, known)).filter((s) => s !== me))];
    if (!ids.length) return;
    this.newError.hidden = true;
    try {
      let convId;
      if (ids.length === 1 && !this.newInput.value.includes(',')) {
        convId = await this.chat.openDirect(ids[0]);
      } else {
        const names = [this.chat.self ? this.chat.self.name || me : me, ...ids.map((id) => this.chat.nameOf(id))];
        convId = await this.chat.createGroup(groupTitle(names), ids);
      }
      this.newInput.value = '';
      this.select(convId);
    } catch (err) {
      this.newError.textContent = err.message || String(err);
      this.newError.hidden = false;
    }
  }

  placeCall() {
    const c = this.chat.convs.get(this.selected);
    if (!c || !this.calls) return;
    if (c.kind === 'direct') this.calls.call(c.peer).catch(() => {});
    // A group call rings every member who is online.
    else if (c.kind === 'group') this.calls.call('', { id: c.id, title: this.chat.title(c) }).catch(() => {});
  }

  sendMessage() {
    const text = this.input.value;
    if (!this.selected || !text.trim()) return;
    this.input.value = '';
    this.grow.fit();
    this.stick = true;
    this.chat.send(this.selected, text);
  }

  select(id) {
    this.selected = id;
    if (id) this.showingList = this.mode === 'split';
    this.updateVisible();
    this.render();
    if (id && this.mode === 'split') this.input.focus();
  }

  // showList shows the conversation list with the people in the call.
  showList() {
    this.showingList = true;
    this.select('');
  }

  setOpen(open) {
    this.open = open;
    this.updateVisible();
  }

  updateVisible() {
    const seen = this.open && document.visibilityState === 'visible' && (this.mode === 'split' || !this.showingList);
    this.chat.setVisible(seen ? this.selected : '');
  }

  totalUnread() {
    let n = 0;
    for (const c of this.chat.convs.values()) n += c.unread || 0;
    return n;
  }

  render() {
    const chat = this.chat;
    if (!this.selected && this.mode === 'panel' && chat.roomConversationId && !this.showingList) {
      this.selected = chat.roomConversationId;
      this.updateVisible();
    }
    this.el.classList.toggle('show-list', this.showingList);
    this.el.classList.toggle('has-selection', !!this.selected);
    this.renderList();
    this.renderPane();
    this.renderPeople();
    this.renderKnown();
    if (this.onRender) this.onRender();
  }

  // renderList keeps one element per conversation across renders, so a
  // click that lands during an update still hits a live element.
  renderList() {
    const chat = this.chat;
    const convs = chat.sortedConversations();
    this.empty.hidden = convs.length > 0;
    const keep = new Map();
    const items = convs.map((c) => {
      let it = this.listItems.get(c.id);
      if (!it) it = this.makeListItem(c.id);
      keep.set(c.id, it);
      const li = it.li;
      li.dataset.kind = c.kind;
      li.dataset.unread = String(c.unread || 0);
      if (c.kind === 'direct') li.dataset.peer = c.peer;
      li.classList.toggle('active', c.id === this.selected);
      const st = c.kind === 'direct' ? chat.presence.get(c.peer) || 'offline' : '';
      it.dot.dataset.status = st || 'none';
      it.dot.title = st ? PRESENCE_TITLE[st] : '';
      const last = chat.timeline(c.id).filter((m) => !m.deleted).pop();
      setText(it.title, chat.title(c));
      setText(it.preview, last ? preview(chat, c, last) : (c.kind === 'room' ? 'Chat with everyone in the call' : ''));
      it.badge.hidden = !(c.unread > 0);
      setText(it.badge, String(c.unread || 0));
      it.badge.title = `${c.unread} unread`;
      return li;
    });
    this.listItems = keep;
    if (items.some((li, i) => this.convList.children[i] !== li) || this.convList.children.length !== items.length) {
      this.convList.replaceChildren(...items);
    }
  }

  makeListItem(id) {
    const li = el('li', 'conv', { testid: 'conv-item', tabindex: '0', role: 'button' });
    li.dataset.conversation = id;
    const dot = el('span', 'presence', { testid: 'presence-dot' });
    const main = el('div', 'conv-main');
    const title = el('div', 'conv-title', { testid: 'conv-title' });
    const prev = el('div', 'conv-preview');
    main.append(title, prev);
    const badge = el('span', 'badge', { testid: 'unread-badge' });
    li.append(dot, main, badge);
    const go = () => this.select(id);
    li.addEventListener('click', go);
    li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(); });
    return { li, dot, title, preview: prev, badge };
  }

  renderPane() {
    const chat = this.chat;
    const c = chat.convs.get(this.selected);
    const hasConv = !!c;
    for (const n of [this.scroller, this.typingLine, this.input.parentElement, this.callBtn.parentElement]) n.hidden = !hasConv;
    this.placeholder.hidden = hasConv;
    if (!c) return;
    // composerBlock(id) says why the user may not write in a conversation
    // ('' when they may); the call page's ModUI sets it (mod-ui.js).
    const why = this.composerBlock ? this.composerBlock(this.selected) : '';
    this.input.disabled = this.sendBtn.disabled = !!why;
    this.input.placeholder = why || 'Write a message';
    this.input.title = why;
    this.title.textContent = chat.title(c);
    const st = c.kind === 'direct' ? chat.presence.get(c.peer) || 'offline' : '';
    this.headDot.hidden = !st;
    this.headDot.dataset.status = st;
    this.headDot.title = PRESENCE_TITLE[st] || '';
    const busy = !!(this.calls && (this.calls.outgoing || this.calls.incoming.size));
    this.callBtn.hidden = !(this.calls && (c.kind === 'direct' || c.kind === 'group'));
    this.callBtn.setAttribute('aria-label', `Call ${chat.title(c)}`);
    this.callBtn.disabled = busy || chat.status !== 'online';
    this.olderBtn.hidden = !c.more || !c.oldest;
    this.olderBtn.disabled = c.loadingOlder;
    this.olderBtn.textContent = c.loadingOlder ? 'Loading…' : 'Load earlier messages';
    const typing = chat.typingIn(c.id);
    this.typingLine.textContent = typing.length ? `${typing.join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…` : '';

    const sc = this.scroller;
    const switched = this.renderedFor !== c.id;
    const fromBottom = sc.scrollHeight - sc.scrollTop - sc.clientHeight;
    const atBottom = switched || fromBottom < 40 || this.stick;
    if (switched) this.items.clear();
    this.renderedFor = c.id;
    const nodes = [];
    const keep = new Map();
    for (const m of chat.timeline(c.id)) {
      const editing = this.editing && this.editing.key === m.key;
      const sig = `${m.kind}|${m.text}|${m.status}|${m.deleted}|${m.edited}|${m.seq}|${m.senderName}|${editing}|${reactionsKey(m.reactions)}`;
      let it = this.items.get(m.key);
      if (!it || it.sig !== sig) it = { el: this.messageEl(c, m), sig };
      keep.set(m.key, it);
      nodes.push(it.el);
    }
    this.items = keep;
    this.noMessages.hidden = nodes.length > 0 || c.lastSeq > 0;
    patchChildren(this.msgs, nodes);
    if (this.editing && document.activeElement !== this.editing.input && this.editing.input.isConnected) this.editing.input.focus();
    if (atBottom) sc.scrollTop = sc.scrollHeight;
    else sc.scrollTop = sc.scrollHeight - sc.clientHeight - fromBottom;
    this.stick = false;
  }

  messageEl(c, m) {
    if (m.kind === 'call_missed' || m.kind === 'call_declined' || m.kind === 'system') {
      const e = el('div', `msg-event ${m.kind}`, { testid: 'message' });
      setData(e, m);
      e.append(el('span', 'ico ico-phone'), el('span', 'msg-text', { testid: 'message-text', text: callText(this.chat, c, m) }),
        el('time', 'msg-time', { text: clock(m.createdAt) }));
      return e;
    }
    const e = el('div', `msg${m.own ? ' own' : ''}${m.deleted ? ' deleted' : ''}${m.status === 'failed' ? ' failed' : ''}`, { testid: 'message' });
    setData(e, m);
    if (!m.own && c.kind !== 'direct') e.append(el('div', 'msg-sender', { testid: 'message-sender', text: m.senderName }));
    if (this.editing && this.editing.key === m.key && !m.deleted) e.append(this.editing.input);
    else if (m.deleted) e.append(el('div', 'msg-text', { testid: 'message-text', text: 'Message deleted' }));
    else e.append(linkedText(el('div', 'msg-text', { testid: 'message-text' }), m.text));
    if (m.kind === 'text' && m.seq > 0 && !m.deleted) {
      e.append(reactionBar(m.reactions, {
        nameOf: (id) => (this.chat.self && id === this.chat.self.identity ? 'You' : this.chat.nameOf(id)),
        toggle: (emoji, remove) => this.chat.react(c.id, m.seq, emoji, remove).catch((err) => this.changeFailed(e, 'Reaction not saved', err)),
      }));
    }
    const meta = el('div', 'msg-meta');
    if (m.edited) meta.append(el('span', '', { testid: 'message-edited', text: 'edited' }));
    meta.append(el('time', 'msg-time', { text: clock(m.createdAt) }));
    if (m.own && m.status) {
      const s = el('span', `msg-status st-${m.status}`, { testid: 'message-status', title: m.error ? `${STATUS_TITLE[m.status]}: ${m.error}` : STATUS_TITLE[m.status], text: STATUS_MARK[m.status] });
      meta.append(s);
      if (m.status === 'failed') {
        const retry = el('button', 'link-btn', { testid: 'retry-button', type: 'button', text: 'Retry' });
        retry.addEventListener('click', () => this.chat.retry(m.clientMsgId));
        meta.append(retry);
      }
    }
    if (m.own && m.seq > 0 && m.kind === 'text' && !m.deleted) meta.append(...this.changeButtons(c, m, e));
    e.append(meta);
    return e;
  }

  // changeButtons lets the author edit or delete a stored message. Delete
  // asks for a second click within 3 s instead of a dialog.
  changeButtons(c, m, e) {
    const edit = el('button', 'link-btn msg-change', { testid: 'edit-button', type: 'button', text: 'Edit' });
    edit.addEventListener('click', () => this.startEdit(c, m));
    const del = el('button', 'link-btn msg-change', { testid: 'delete-button', type: 'button', text: 'Delete' });
    del.addEventListener('click', () => {
      if (!del.dataset.armed) {
        del.dataset.armed = '1';
        del.textContent = 'Delete?';
        setTimeout(() => { delete del.dataset.armed; del.textContent = 'Delete'; }, 3000);
        return;
      }
      del.disabled = true;
      this.chat.remove(c.id, m.seq).catch((err) => this.changeFailed(e, 'Not deleted', err));
    });
    return [edit, del];
  }

  startEdit(c, m) {
    const input = el('input', 'msg-edit', { testid: 'edit-input', type: 'text', maxlength: '4000', 'aria-label': 'Edit message' });
    input.value = m.text;
    const done = () => { this.editing = null; this.renderPane(); };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') done();
      if (ev.key !== 'Enter') return;
      ev.preventDefault();
      const text = input.value;
      if (text.trim() === m.text) { done(); return; }
      input.disabled = true;
      this.chat.edit(c.id, m.seq, text).then(done, (err) => {
        input.disabled = false;
        input.title = `Not saved: ${err.message || err}`;
        input.classList.add('failed');
      });
    });
    this.editing = { key: m.key, seq: m.seq, input };
    this.renderPane();
    input.focus();
  }

  changeFailed(e, what, err) {
    const note = el('span', 'msg-error', { testid: 'change-error', text: `${what}: ${err.message || err}` });
    e.append(note);
    setTimeout(() => note.remove(), 8000);
  }
}

// groupTitle joins names into a title within the server's 128 bytes.
function groupTitle(names) {
  let t = '';
  for (const n of names) {
    const next = t ? `${t}, ${n}` : n;
    if (new TextEncoder().encode(next).length > 120) return `${t}, …`;
    t = next;
  }
  return t;
}

// patchChildren makes parent's children equal nodes, touching only what
// differs: a message that stays where it was is never detached, so a
// click in flight on it or a text selection in it survives an update
// elsewhere in the list (replacing all children would drop them).
function patchChildren(parent, nodes) {
  nodes.forEach((n, i) => {
    const at = parent.children[i];
    if (at !== n) parent.insertBefore(n, at || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}

function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

function setData(e, m) {
  e.dataset.seq = String(m.seq);
  e.dataset.kind = m.kind;
  e.dataset.own = String(m.own);
  e.dataset.status = m.status || '';
  e.dataset.clientMsgId = m.clientMsgId || '';
}

// callText describes a missed or declined call from the viewer's side;
// the event's sender is the caller.
export function callText(chat, c, m) {
  if (m.kind === 'system') return m.text;
  const peer = c.kind === 'direct' ? chat.nameOf(c.peer) : 'Someone';
  if (m.kind === 'call_missed') return m.own ? `${peer} missed your call` : `Missed call from ${m.senderName}`;
  return m.own ? `${peer} declined your call` : `You declined a call from ${m.senderName}`;
}

// preview is a conversation's last entry in the list; a call entry says
// it from the viewer's side ("Missed call from Ada", "Bob missed your
// call"), as in the conversation.
function preview(chat, c, m) {
  if (m.kind !== 'text') return callText(chat, c, m);
  return `${m.own ? 'You: ' : ''}${m.text}`.slice(0, 80);
}
