package signaling

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/internal/wsbatch"
	"github.com/parleyhq/parley/signaling/proto"
)

// maxRateViolations is how many rate-limited messages in a row close the
// connection (docs/protocol.md, Limits).
const maxRateViolations = 100

// closeGrace is how long we keep reading after sending a close frame, so
// the client's close reply (and data it already sent) is consumed instead
// of being answered with a TCP reset that could hide our last messages.
const closeGrace = time.Second

// wsConn is one WebSocket, and only that: the reader (which also runs
// request handlers) reads; the writer drains the bounded send queue of
// internal/wsbatch and writes, pings and the final close frame. Everyone
// else only enqueues, which never blocks: an idle connection takes the
// frame at once (a direct write), and a full queue drops the client
// rather than blocking the room. What a joined connection is (a call, a
// chat session) lives in its session (session.go), which reaches the
// socket through outbound.
type wsConn struct {
	s       *Server
	ws      *websocket.Conn
	bc      *wsbatch.Conn // ws's socket; nil when ws was made without one (tests)
	q       *wsbatch.Queue
	log     *slog.Logger
	limiter *rate.Limiter

	closing   atomic.Bool // no more messages are queued or processed
	closeOnce sync.Once
	closeReq  chan struct{}
	closeCode int
	closeText string

	deadlineMu  sync.Mutex
	readClosing bool // the close grace deadline is set; don't extend it

	writerDone chan struct{}

	joined atomic.Bool
	// tokenShown is set once join presented a valid token, before the
	// join's outcome is queued: from then on the socket either joins or
	// is closed, so it no longer counts as waiting (addrcap.go), even in
	// the moment between "joined" reaching the client and joined being
	// set.
	tokenShown atomic.Bool
	// sess is set by the reader when a join succeeds; only the reader
	// (and its teardown) uses it.
	sess *session

	// client is the client's address (peraddr, trusted proxies applied);
	// relayedBy the node that relayed this socket here, if one did.
	client    netip.Addr
	relayedBy string
	// joinFrame is the join request being handled, as the client sent it
	// (reader only).
	joinFrame []byte
	// relay is set by the reader when the join was relayed to the room's
	// node (join_relay.go): from then on the reader forwards every frame
	// there. relayed mirrors it for the writer and the read deadline.
	relay   *joinRelay
	relayed atomic.Bool
}

func newWSConn(s *Server, ws *websocket.Conn, log *slog.Logger) *wsConn {
	bc, _ := ws.NetConn().(*wsbatch.Conn)
	return &wsConn{
		s:          s,
		ws:         ws,
		bc:         bc,
		q:          wsbatch.NewQueue(bc, s.cfg.SendQueue),
		log:        log,
		limiter:    rate.NewLimiter(rate.Limit(s.cfg.RatePerSecond), s.cfg.RateBurst),
		closeReq:   make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// waitingForJoin reports whether the socket has not yet shown a valid
// join token.
func (c *wsConn) waitingForJoin() bool { return !c.tokenShown.Load() && !c.joined.Load() }

// enqueue queues one message without blocking. A client whose queue is
// full cannot keep up; it is disconnected and counted.
func (c *wsConn) enqueue(msg []byte) {
	if c.closing.Load() {
		return
	}
	switch res, err := c.q.Push(msg); res {
	case wsbatch.Full:
		c.dropSlow()
	case wsbatch.Failed:
		c.directFailed(err)
	}
}

// directFailed ends a connection whose socket failed a direct write, as
// the writer does when its write fails.
func (c *wsConn) directFailed(err error) {
	if c.closing.CompareAndSwap(false, true) && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("write failed", "err", err)
	}
	_ = c.ws.NetConn().Close()
}

func (c *wsConn) dropSlow() {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.s.metrics.queueDrops.Inc()
	c.log.Warn("send queue full, disconnecting slow client")
	// Closing the socket makes both goroutines fail fast; the normal
	// teardown then removes the participant.
	_ = c.ws.NetConn().Close()
}

// requestClose asks the writer to flush the queue and send a close frame.
func (c *wsConn) requestClose(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		c.closing.Store(true)
		close(c.closeReq)
	})
}

// sendError queues an error message answering request re.
func (c *wsConn) sendError(re string, perr *proto.Error) {
	c.s.metrics.errors.WithLabelValues(perr.Code).Inc()
	c.enqueue(proto.Encode(proto.TypeError, re, proto.ErrorBody{Code: perr.Code, Message: perr.Message, URL: perr.URL}))
}

// fail sends an error and closes with the given WebSocket close code.
func (c *wsConn) fail(re string, perr *proto.Error, closeCode int) {
	c.log.Debug("closing connection", "code", perr.Code, "reason", perr.Message)
	c.sendError(re, perr)
	c.requestClose(closeCode, perr.Code)
}

// sendBye tells the client why it is being disconnected, then closes.
func (c *wsConn) sendBye(reason string) {
	c.enqueue(proto.Encode(proto.TypeBye, "", proto.ByeBody{Reason: reason}))
	code := websocket.CloseNormalClosure
	if reason == proto.ByeShutdown {
		code = websocket.CloseGoingAway
	}
	c.requestClose(code, reason)
}

func (c *wsConn) extendReadDeadline(d time.Duration) {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if !c.readClosing {
		_ = c.ws.SetReadDeadline(time.Now().Add(d))
	}
}

func (c *wsConn) setCloseDeadline() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.readClosing = true
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

// serve runs the connection until it ends, then ends its session (which
// leaves the room and releases its media). It returns after the writer
// has exited.
func (c *wsConn) serve() {
	go c.writeLoop()
	err := c.readLoop()
	c.afterRead(err)
	if c.relay != nil {
		c.relay.close()
	}
	if c.sess != nil {
		c.sess.end()
	}
	// The writer's flush and close frame are bounded by WriteTimeout; give
	// it that long, then cut the socket so it cannot hang.
	t := time.NewTimer(c.s.cfg.WriteTimeout + closeGrace)
	select {
	case <-c.writerDone:
	case <-t.C:
		_ = c.ws.NetConn().Close()
		<-c.writerDone
	}
	t.Stop()
	_ = c.ws.Close()
}

// afterRead explains a read failure to the client when it is still there.
func (c *wsConn) afterRead(err error) {
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	switch {
	case c.closing.Load():
		// We initiated the close; the error is its expected end.
	case timedOut && (c.joined.Load() || c.relayed.Load()):
		c.log.Info("heartbeat timeout")
		c.sendBye(proto.ByeTimeout)
	case timedOut:
		c.fail("", &proto.Error{Code: proto.CodeUnauthorized, Message: "no join message in time"}, websocket.ClosePolicyViolation)
	default:
		if websocket.IsUnexpectedCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
			c.log.Debug("connection ended", "err", err)
		}
	}
	c.requestClose(websocket.CloseNormalClosure, "")
}

// readLoop reads frames until the socket fails or the close completes.
// Protocol errors are answered, never fatal to the loop itself: after a
// fatal one the loop keeps reading (and ignoring) until the client's
// close reply or the grace deadline.
func (c *wsConn) readLoop() error {
	cfg := &c.s.cfg
	c.extendReadDeadline(cfg.JoinTimeout)
	violations := 0
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		// Read at most one byte past the limit instead of letting a huge
		// frame be buffered; the rest is discarded under the close deadline.
		frame, err := io.ReadAll(io.LimitReader(r, int64(cfg.MaxMessageBytes)+1))
		if err != nil {
			return err
		}
		if c.closing.Load() {
			continue
		}
		if len(frame) > cfg.MaxMessageBytes {
			c.fail("", &proto.Error{Code: proto.CodeTooLarge, Message: "message larger than max_message_bytes"}, websocket.CloseMessageTooBig)
			continue
		}
		if c.joined.Load() {
			c.extendReadDeadline(cfg.PingTimeout)
		} else if c.relay != nil {
			// The room's node times a silent client out itself; here only
			// a backstop, later than the relay's own check of that node
			// (a client goes quiet when that node's pings stop coming).
			c.extendReadDeadline(2 * cfg.PingTimeout)
		}
		if !c.limiter.Allow() {
			violations++
			if violations >= maxRateViolations {
				c.fail("", &proto.Error{Code: proto.CodeRateLimited, Message: "too many messages; closing"}, websocket.ClosePolicyViolation)
			} else {
				c.sendError("", &proto.Error{Code: proto.CodeRateLimited, Message: "message rate limit exceeded; message dropped"})
			}
			continue
		}
		violations = 0
		if mt != websocket.TextMessage {
			c.s.metrics.countMessage("")
			c.sendError("", proto.BadRequest("binary frames are not supported"))
			continue
		}
		if c.relay != nil {
			c.relay.forward(frame) // the room's node decodes and answers
			continue
		}
		req, perr := proto.DecodeRequest(frame)
		c.s.metrics.countMessage(req.Type)
		if perr != nil {
			if perr.Code == proto.CodeUnauthorized {
				c.fail(req.ID, perr, websocket.ClosePolicyViolation)
				continue
			}
			c.sendError(req.ID, perr)
			continue
		}
		if req.Type == proto.TypeJoin {
			c.joinFrame = frame
		}
		c.dispatch(req)
		c.joinFrame = nil
	}
}

// writeLoop owns all writes: queued messages, pings and the final close
// frame. Each wake-up writes everything it has as one batch: one
// write(2) and one deadline for the lot.
func (c *wsConn) writeLoop() {
	defer close(c.writerDone)
	cfg := &c.s.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-c.q.Wake():
			c.beginBatch()
			err = c.writeQueued()
		case <-ping.C:
			if !c.joined.Load() || c.closing.Load() {
				continue
			}
			c.beginBatch()
			err = c.write(proto.Encode(proto.TypePing, "", proto.PingBody{TS: time.Now().UnixMilli()}))
			if err == nil {
				// Also a WebSocket ping, which keeps idle proxies open.
				err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout))
			}
		case <-c.closeReq:
			c.beginBatch()
			if err := c.writeQueued(); err == nil {
				msg := websocket.FormatCloseMessage(c.closeCode, c.closeText)
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(cfg.WriteTimeout))
			}
			// The batch stays open (no End): nothing may follow the
			// close frame.
			_ = c.q.Flush()
			c.setCloseDeadline()
			return
		}
		if ferr := c.q.Flush(); err == nil {
			err = ferr
		}
		if err == nil {
			c.q.End()
		} else {
			c.closing.Store(true)
			if !errors.Is(err, net.ErrClosed) {
				c.log.Debug("write failed", "err", err)
			}
			_ = c.ws.NetConn().Close()
			return
		}
	}
}

// beginBatch starts collecting frames; c.q.Flush sends them. The
// deadline covers the whole batch, so a client that stopped reading
// cannot hold the writer for long.
func (c *wsConn) beginBatch() {
	d := time.Now().Add(c.s.cfg.WriteTimeout)
	_ = c.ws.SetWriteDeadline(d)
	c.q.Begin(d)
}

// write adds one message to the open batch.
func (c *wsConn) write(msg []byte) error {
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// writeQueued adds what is queued now to the open batch.
func (c *wsConn) writeQueued() error {
	q := c.q.Take()
	for _, msg := range q {
		if err := c.write(msg); err != nil {
			return err
		}
	}
	c.q.Recycle(q)
	return nil
}
