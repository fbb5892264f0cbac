// DOM helpers shared by the views (ui.js, chat-ui.js, calls-ui.js) and the
// page wiring (app.js, chat-page.js). Models never import this file, so
// they stay testable without a document.

export const $ = (id) => document.getElementById(id);

// el makes an element: cls is its className; attrs are attributes, except
// `testid` (data-testid) and `text` (textContent, never parsed as HTML:
// the CSP forbids inline code and this keeps markup out of user text).
export function el(tag, cls, attrs = {}) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'testid') e.dataset.testid = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  return e;
}

const PILL_TEXT = {
  idle: 'Idle', connecting: 'Connecting…', connected: 'Connected',
  reconnecting: 'Reconnecting…', closed: 'Disconnected', failed: 'Failed',
  waiting: 'Waiting to be let in',
};

// showPill puts a link's status into a status pill (`.status` with a
// `.label`): data-state colours the dot (style.css), the label says it in
// words. words overrides labels per page, e.g. "Online" on /chat.
export function showPill(pill, status, words = {}) {
  pill.dataset.state = status;
  pill.querySelector('.label').textContent = words[status] || PILL_TEXT[status] || status;
}
