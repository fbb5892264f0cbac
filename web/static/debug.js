// Fault simulations for the end-to-end tests (../e2e). They exist on a page
// only when its address has `?debug` (debugEnabled), and they act on the
// models from outside: the models themselves carry no test code.

// debugEnabled reads the switch: `?debug` or `?debug=1`; `?debug=0` is off.
export function debugEnabled(search = window.location.search) {
  const v = new URLSearchParams(search).get('debug');
  return v !== null && v !== '0' && v !== 'false';
}

// dropConnection closes a link's WebSocket abruptly, as a proxy or NAT that
// drops it would; the link must notice and rejoin by itself.
export function dropConnection(link) {
  const ws = link && link.sig && link.sig.ws;
  if (ws) ws.close(4001, 'simulated drop');
}

// restartIce runs the recovery a Call uses for a broken PeerConnection
// while signaling is up (an ICE restart, not a rejoin).
export function restartIce(call) {
  if (call) call.onBroken('publisher');
}

// ChatTap stands between a link and a Chat. It passes the link's events
// on, but can lose the next pushed chat messages, as a server that dropped
// them for a slow connection would, and it counts the chat_range requests
// the Chat makes on the link's connections: the gap refills that follow.
export class ChatTap extends EventTarget {
  constructor(link) {
    super();
    this.dropPushes = 0;
    this.gapFills = 0;
    link.addEventListener('joined', (ev) => {
      this.forward('joined', { ...ev.detail, sig: this.counting(ev.detail.sig) });
    });
    link.addEventListener('message', (ev) => {
      if (ev.detail.type === 'message' && this.dropPushes > 0) {
        this.dropPushes--;
        return;
      }
      this.forward('message', ev.detail);
    });
  }

  forward(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // counting returns sig as is, except that its chat_range requests count.
  counting(sig) {
    const request = (type, ...rest) => {
      if (type === 'chat_range') this.gapFills++;
      return sig.request(type, ...rest);
    };
    return new Proxy(sig, {
      get(target, prop) {
        if (prop === 'request') return request;
        const v = target[prop];
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }
}
