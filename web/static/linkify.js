// Links in chat messages. linkParts splits a message's text into plain
// text and http(s) links without a document (unit-tested); linkedText
// builds the message's DOM from them with text nodes and <a> elements
// only, never HTML parsed from the message, so a message cannot inject
// markup or a javascript: URL.

// A link starts with http:// or https:// (or www.) and runs to the next
// whitespace or angle bracket; trailing punctuation that usually closes
// a sentence is left out ("see https://example.com." links without the dot).
const LINK_RE = /\b(?:https?:\/\/|www\.)[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}]+$/;

// MAX_LINKS bounds the work per message (a message is at most a few KB).
const MAX_LINKS = 50;

// safeHref turns a found link into an absolute http(s) URL, or '' when
// it is not one (the URL parser decides, not a pattern).
export function safeHref(raw) {
  const withScheme = /^www\./i.test(raw) ? `https://${raw}` : raw;
  try {
    const u = new URL(withScheme);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return '';
    return u.href;
  } catch {
    return '';
  }
}

// linkParts returns [{text}] and [{text, href}] pieces whose texts,
// joined, are exactly text.
export function linkParts(text) {
  const out = [];
  let at = 0;
  let n = 0;
  for (const m of String(text).matchAll(LINK_RE)) {
    if (n >= MAX_LINKS) break;
    let raw = m[0];
    const trail = TRAILING.exec(raw);
    if (trail) raw = raw.slice(0, raw.length - trail[0].length);
    const href = safeHref(raw);
    if (!href || !raw) continue;
    if (m.index > at) out.push({ text: text.slice(at, m.index) });
    out.push({ text: raw, href });
    at = m.index + raw.length;
    n++;
  }
  if (at < text.length) out.push({ text: text.slice(at) });
  return out;
}

// linkedText fills e with text, its links clickable: each opens in a new
// tab without giving the page a handle on this one (noopener) or the
// address of this page (noreferrer).
export function linkedText(e, text) {
  const nodes = linkParts(text).map((p) => {
    if (!p.href) return document.createTextNode(p.text);
    const a = document.createElement('a');
    a.href = p.href;
    a.textContent = p.text;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.className = 'msg-link';
    a.dataset.testid = 'message-link';
    return a;
  });
  e.replaceChildren(...nodes);
  return e;
}
