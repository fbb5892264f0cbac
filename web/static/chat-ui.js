// ChatUI renders a Chat into a container: the conversations list (unread
// badges, presence dots, "new chat" by identity) and one conversation
// (messages with pending/failed/sent/delivered/read marks, call entries,
// scroll-back, typing line, composer). In 'split' mode both show side by
// side (the /chat page); in 'panel' mode (beside the video grid) one at a
// time, starting with the room's conversation.

import { el } from './dom.js';

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
  // buttons); mode: 'split' or 'panel'.
  constructor({ root, chat, calls = null, mode = 'split' }) {
    this.root = root;
    this.chat = chat;
    this.calls = calls;
    this.mode = mode;
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
  }

  build() {
    const r = el('div', `chat chat-${this.mode}`, { testid: 'chat' });
    const list = el('section', 'chat-list', { testid: 'conv-list' });
    const form = el('form', 'new-chat', { testid: 'new-chat-form' });
    this.newInput = el('input', '', { testid: 'new-chat-input', placeholder: 'Identity (bob), or several for a group (bob, carol)', maxlength: '2048', autocomplete: 'off', 'aria-label': 'Identity to message, or several separated by commas for a group', title: 'One identity opens a direct chat; several, separated by commas, make a group' });
    const newBtn = el('button', 'small', { testid: 'new-chat-button', type: 'submit', text: 'Open' });
    form.append(this.newInput, newBtn);
    form.addEventListener('submit', (ev) => { ev.preventDefault(); this.openDirect(); });
    this.newError = el('p', 'error small-error', { testid: 'new-chat-error', role: 'alert' });
    this.newError.hidden = true;
    this.convList = el('ul', 'convs');
    this.empty = el('p', 'muted empty', { text: 'No conversations yet.' });
    list.append(form, this.newError, this.convList, this.empty);

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
    composer.append(this.input, send);
    composer.addEventListener('submit', (ev) => { ev.preventDefault(); this.sendMessage(); });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.sendMessage();
      }
    });
    this.input.addEventListener('input', () => { if (this.selected && this.input.value) this.chat.typing(this.selected); });
    this.placeholder = el('p', 'muted pane-empty', { text: 'Pick a conversation, or message someone by their identity.' });
    pane.append(head, this.scroller, this.typingLine, composer, this.placeholder);
    this.pane = pane;
    this.list = list;
    r.append(list, pane);
    this.root.replaceChildren(r);
    this.el = r;
  }

  // openDirect opens a direct chat with one identity, or makes a group
  // when several are given (comma-separated); the group's title lists
  // its members, the user first.
  async openDirect() {
    const me = this.chat.self ? this.chat.self.identity : '';
    const ids = [...new Set(this.newInput.value.split(',').map((s) => s.trim()).filter((s) => s && s !== me))];
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
    if (c && c.kind === 'direct' && this.calls) this.calls.call(c.peer).catch(() => {});
  }

  sendMessage() {
    const text = this.input.value;
    if (!this.selected || !text.trim()) return;
    this.input.value = '';
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
      setText(it.preview, last ? preview(chat, last) : (c.kind === 'room' ? 'Chat with everyone in the call' : ''));
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
    this.title.textContent = chat.title(c);
    const st = c.kind === 'direct' ? chat.presence.get(c.peer) || 'offline' : '';
    this.headDot.hidden = !st;
    this.headDot.dataset.status = st;
    this.headDot.title = PRESENCE_TITLE[st] || '';
    const busy = !!(this.calls && (this.calls.outgoing || this.calls.incoming.size));
    this.callBtn.hidden = !(this.calls && c.kind === 'direct');
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
      const sig = `${m.kind}|${m.text}|${m.status}|${m.deleted}|${m.edited}|${m.seq}|${m.senderName}|${editing}`;
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
    else e.append(el('div', 'msg-text', { testid: 'message-text', text: m.deleted ? 'Message deleted' : m.text }));
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

function preview(chat, m) {
  if (m.kind !== 'text') return m.kind === 'call_missed' ? 'Missed call' : m.kind === 'call_declined' ? 'Declined call' : m.text;
  return `${m.own ? 'You: ' : ''}${m.text}`.slice(0, 80);
}
