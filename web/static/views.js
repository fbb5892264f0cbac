// ViewReporter tells the server how this page shows each remote video:
// `video_view` with the tile's size in device pixels and whether it is
// seen (docs/protocol.md). The server then forwards the smallest simulcast
// layer that covers the tile, and nothing for a tile nobody sees.
// Reports go out when a size or visibility changes, at most every
// THROTTLE_MS, and at once when the page is hidden or shown.

export const THROTTLE_MS = 250;

export class ViewReporter {
  // getSig returns the call's current Signaling (or null).
  constructor(getSig) {
    this.getSig = getSig;
    this.els = new Map(); // <video> -> trackSid
    this.inView = new Map(); // <video> -> intersecting the viewport
    this.sent = new Map(); // trackSid -> last report sent, as a key
    this.sig = null; // the Signaling the reports in `sent` went to
    this.timer = 0;
    this.ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => this.schedule()) : null;
    this.io = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => {
        for (const e of entries) this.inView.set(e.target, e.isIntersecting);
        this.schedule();
      })
      : null;
    this.onVisibility = () => this.flush();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  // watch says that el shows the remote video track trackSid ('' for
  // none: a local or empty tile).
  watch(el, trackSid) {
    const had = this.els.get(el);
    if (had === trackSid) return;
    if (!trackSid) {
      this.unwatch(el);
      return;
    }
    if (had === undefined) {
      if (this.ro) this.ro.observe(el);
      if (this.io) this.io.observe(el);
    }
    this.els.set(el, trackSid);
    this.schedule();
  }

  unwatch(el) {
    if (!this.els.has(el)) return;
    this.els.delete(el);
    this.inView.delete(el);
    if (this.ro) this.ro.unobserve(el);
    if (this.io) this.io.unobserve(el);
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.flush();
    }, THROTTLE_MS);
  }

  flush() {
    const sig = this.getSig();
    if (!sig) return;
    if (sig !== this.sig) {
      // A new connection: the server knows nothing of earlier reports.
      this.sig = sig;
      this.sent.clear();
    }
    const dpr = window.devicePixelRatio || 1;
    const hidden = document.visibilityState === 'hidden';
    for (const [el, trackSid] of this.els) {
      const r = el.getBoundingClientRect();
      const width = Math.round(r.width * dpr);
      const height = Math.round(r.height * dpr);
      const visible = !hidden && this.inView.get(el) !== false && width > 0 && height > 0;
      const key = `${width}x${height}:${visible}`;
      if (this.sent.get(trackSid) === key) continue;
      if (sig.send('video_view', { trackSid, width, height, visible })) this.sent.set(trackSid, key);
    }
  }

  close() {
    clearTimeout(this.timer);
    this.timer = 0;
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.ro) this.ro.disconnect();
    if (this.io) this.io.disconnect();
    this.els.clear();
  }
}
