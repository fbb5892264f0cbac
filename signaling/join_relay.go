package signaling

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/signaling/proto"
)

// Cluster mode with cluster.relay_signaling (docs/cluster.md, "Joining a
// room hosted by another node"): a join whose room lives on another node
// is not answered wrong_node; this node opens a WebSocket to the hosting
// node's /ws, hands it the client's join frame unchanged and copies frames
// both ways until either side closes. The hosting node runs the session
// as for any client (it checks the token, the room's moderation, the
// limits), so nothing of the protocol is reimplemented here, and the
// client's signaling needs only the address it already reached; its
// media goes to the hosting node's own addresses, which the hosting
// node's answers carry.
//
// Why a WebSocket and not the Redis bus: a session's messages need order
// and delivery (a lost answer or candidate breaks the call), and TCP
// gives both with backpressure, while Redis pub/sub delivers at most once
// and buffers without bound. It is the same node-to-node HTTP the WHIP
// forward uses (ingest/whip_forward.go).

// relayedByHeader names the node that relayed a request; a relayed join
// is never relayed again (two nodes that briefly disagree on a room's
// host would otherwise pass it back and forth).
const relayedByHeader = "X-Parley-Forwarded-By"

// relayMaxMessage bounds a message from the hosting node: its own limits
// keep its messages far smaller (chat pages, the joined snapshot).
const relayMaxMessage = 16 << 20

// relayDialTimeout bounds the WebSocket handshake with the hosting node.
const relayDialTimeout = 5 * time.Second

// errRelayUnavailable answers a join whose hosting node cannot be
// reached or no longer hosts the room; the client retries with backoff,
// and once a dead node's lease lapses the room is placed anew.
var errRelayUnavailable = &proto.Error{Code: proto.CodeUnavailable, Message: "the node hosting this room cannot be reached right now; try again"}

// joinRelay is one client's relayed session: up is the WebSocket to the
// hosting node. The client's reader (wsConn.readLoop) writes to up; the
// pump goroutine reads from it into the client's send queue; the pinger
// goroutine keeps asking up for pongs, so a hosting node that vanished
// without closing is noticed within the ping timeout.
type joinRelay struct {
	c    *wsConn
	up   *websocket.Conn
	node string // the hosting node's URL, for logs

	stop      chan struct{} // closed by close: the pinger returns
	closeOnce sync.Once
	wg        sync.WaitGroup // the pump and the pinger
}

// relayJoin relays the session joining with join (the client's frame,
// request reqID) to the node at nodeURL. It runs on the client's reader
// and returns once the relay runs or the join was refused.
func (c *wsConn) relayJoin(reqID, nodeURL string, join []byte) {
	s := c.s
	ctx, cancel := context.WithTimeout(s.baseCtx, relayDialTimeout)
	up, err := dialRelay(ctx, nodeURL, c.client, s.nodeID())
	cancel()
	if err != nil {
		s.metrics.relayFailures.Inc()
		c.log.Warn("join relay: hosting node unreachable", "node", nodeURL, "err", err)
		c.fail(reqID, errRelayUnavailable, websocket.CloseTryAgainLater)
		return
	}
	up.SetReadLimit(relayMaxMessage)
	r := &joinRelay{c: c, up: up, node: nodeURL, stop: make(chan struct{})}
	if err := r.send(join); err != nil {
		s.metrics.relayFailures.Inc()
		c.log.Warn("join relay: sending the join failed", "node", nodeURL, "err", err)
		_ = up.Close()
		c.fail(reqID, errRelayUnavailable, websocket.CloseTryAgainLater)
		return
	}
	c.relay = r
	c.relayed.Store(true)
	c.extendReadDeadline(2 * s.cfg.PingTimeout) // the backstop of readLoop, from the start
	s.metrics.relayed.Inc()
	c.log.Info("join relayed", "node", nodeURL)
	// Pongs (answers to the pinger) keep up's read deadline ahead; set
	// before the pump reads, which runs the handler.
	extend := func() { _ = up.SetReadDeadline(time.Now().Add(s.cfg.PingTimeout)) }
	extend()
	up.SetPongHandler(func(string) error { extend(); return nil })
	r.wg.Add(2)
	go r.pump()
	go r.pinger()
}

// dialRelay opens the WebSocket to the hosting node's /ws as the client's
// stand-in: the Origin is the hosting node's own (this node checked the
// browser's), X-Forwarded-For the client's address (honoured where this
// node is in signaling.trusted_proxies, for the hosting node's per-address
// limits).
func dialRelay(ctx context.Context, nodeURL string, client netip.Addr, nodeID string) (*websocket.Conn, error) {
	base, err := url.Parse(nodeURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("hosting node URL %q: not a URL", nodeURL)
	}
	wsURL := *base
	switch base.Scheme {
	case "http":
		wsURL.Scheme = "ws"
	case "https":
		wsURL.Scheme = "wss"
	default:
		return nil, fmt.Errorf("hosting node URL %q: not http(s)", nodeURL)
	}
	wsURL.Path, wsURL.RawQuery, wsURL.Fragment = "/ws", "", ""
	h := http.Header{}
	h.Set("Origin", base.Scheme+"://"+base.Host)
	if client.IsValid() {
		h.Set("X-Forwarded-For", client.Unmap().String())
	}
	h.Set(relayedByHeader, cmp.Or(nodeID, "unnamed")) // never empty: it is what stops a second hop
	d := websocket.Dialer{HandshakeTimeout: relayDialTimeout, Proxy: nil}
	up, resp, err := d.DialContext(ctx, wsURL.String(), h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%s: %s", wsURL.Redacted(), resp.Status)
		}
		return nil, fmt.Errorf("%s: %w", wsURL.Redacted(), err)
	}
	return up, nil
}

// send writes one client frame to the hosting node. Only the client's
// reader calls it, so writes never overlap.
func (r *joinRelay) send(frame []byte) error {
	_ = r.up.SetWriteDeadline(time.Now().Add(r.c.s.cfg.WriteTimeout))
	return r.up.WriteMessage(websocket.TextMessage, frame)
}

// forward relays one client frame; a hosting node that cannot take it is
// treated as lost.
func (r *joinRelay) forward(frame []byte) {
	if err := r.send(frame); err != nil {
		r.lost(err)
	}
}

// pump copies the hosting node's messages to the client's send queue
// until up ends, then ends the client's connection the way the hosting
// node ended its own.
func (r *joinRelay) pump() {
	defer r.wg.Done()
	c := r.c
	for {
		mt, msg, err := r.up.ReadMessage()
		if err != nil {
			r.ended(err)
			return
		}
		if mt == websocket.TextMessage {
			c.enqueue(msg)
		}
	}
}

// ended passes the hosting node's close on to the client: its bye or
// error is already queued, and the same close code follows it. A node
// that went away without a close (killed, unreachable) is lost.
func (r *joinRelay) ended(err error) {
	c := r.c
	if c.closing.Load() {
		return // the client's side ended first
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure { // 1006: no close frame came
		code := ce.Code
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.requestClose(code, ce.Text)
		return
	}
	r.lost(err)
}

// lost tells the client to rejoin at once: the hosting node is gone, and
// the rejoin either reaches a node that hosts the room now or is told to
// try again until the dead node's lease lapses and the room is placed
// anew.
func (r *joinRelay) lost(err error) {
	c := r.c
	if c.closing.Load() {
		return
	}
	r.c.s.metrics.relayFailures.Inc()
	if !errors.Is(err, net.ErrClosed) {
		c.log.Warn("join relay: hosting node lost", "node", r.node, "err", err)
	}
	c.sendBye(proto.ByeReconnect)
}

// pinger sends WebSocket pings to the hosting node, whose pongs (and
// messages) keep up's read deadline ahead: a node that stops answering
// ends the relay within PingTimeout.
func (r *joinRelay) pinger() {
	defer r.wg.Done()
	cfg := &r.c.s.cfg
	t := time.NewTicker(cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if err := r.up.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				return // the pump sees the failure too
			}
		}
	}
}

// close ends the relay once the client's connection has ended: the
// hosting node gets a close frame (its session then ends as for any
// client that left) and a moment to answer it; both goroutines are
// joined.
func (r *joinRelay) close() {
	r.closeOnce.Do(func() {
		close(r.stop)
		cfg := &r.c.s.cfg
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = r.up.WriteControl(websocket.CloseMessage, msg, time.Now().Add(cfg.WriteTimeout))
		// The pump reads the close reply and returns; a node that does
		// not answer is cut after the grace.
		done := make(chan struct{})
		go func() {
			r.wg.Wait()
			close(done)
		}()
		t := time.NewTimer(closeGrace)
		select {
		case <-done:
		case <-t.C:
			_ = r.up.Close()
			<-done
		}
		t.Stop()
		_ = r.up.Close()
		r.c.s.metrics.relayed.Dec()
	})
}
