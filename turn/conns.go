package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/turn/internal/relay"
)

// tlsHandshakeTimeout bounds a TLS client that connects and stays silent.
const tlsHandshakeTimeout = 10 * time.Second

// clientPacketConn wraps a UDP listener socket handed to pion: it is
// tracked for shutdown; it shows signed requests to the authenticator
// (secret rotation) and to noteRequest before pion parses them; it turns
// pion's 400 for a refused credential into a 401; and it bounds answers to
// unsigned requests (amplify.go). pion serves each socket from one
// goroutine (read, handle, answer), so the last request read is the one
// being answered.
type clientPacketConn struct {
	net.PacketConn
	raw   relay.Socket // nil on a vnet and off Linux
	local netip.AddrPort
	addrs addrCache
	deps  *relayDeps
	tr    *tracked
	notes requestNotes
	once  sync.Once
}

// loopDatagram is the event loop's first look at a client datagram
// (frame[4:4+n]): ChannelData on a bound channel is relayed at once.
// Datagrams of pion's read size or more may have been cut short; pion
// drops them, so they go to pion.
func (c *clientPacketConn) loopDatagram(frame []byte, n int, from netip.AddrPort) bool {
	b := frame[4 : 4+n]
	if n >= 4 && n < maxRelayPayload && b[0]&0xc0 == 0x40 &&
		c.deps.fast.lookup(fastKey{client: from, server: c.local}).ToPeer(b) {
		return true
	}
	// A reservation claimed on another socket (steer.go).
	if to := c.deps.steer.route(b, from, c); to != nil && to.raw != nil {
		to.raw.Enqueue(b, from)

		return true
	}

	return false
}

func (c *clientPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c.tr.enter()
		n, ap, addr, err := c.readFrom(p)
		c.tr.leave()
		if err != nil {
			return n, addr, err
		}
		// STUN messages start with two zero bits, ChannelData with 01.
		if n >= 4 && p[0]&0xc0 == 0x40 {
			// The event loop tried the fast path already; on a vnet
			// there is no loop, so try it here.
			if c.raw == nil && c.deps.fast.lookup(fastKey{client: ap, server: c.local}).ToPeer(p[:n]) {
				continue
			}

			return n, addr, nil
		}
		if n >= 20 && p[0] < 0x40 {
			c.deps.replies.noteRequest(&c.notes, p[:n], addr)
			if c.deps.learn != nil {
				c.deps.learn(p[:n])
			}
		}

		return n, addr, nil
	}
}

func (c *clientPacketConn) readFrom(p []byte) (int, netip.AddrPort, net.Addr, error) {
	if c.raw == nil {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, netip.AddrPort{}, nil, err
		}
		ap, _ := addrPort(addr)

		return n, ap, addr, nil
	}
	n, ap, err := c.raw.Recv(p)
	if err != nil {
		return n, ap, nil, err
	}

	return n, ap, c.addrs.get(ap), nil
}

// addrCache hands out one *net.UDPAddr per client address so that pion's
// read loop does not allocate one per datagram. Only that loop uses it. It
// is bounded: when full (many clients, or a flood of spoofed sources) it
// starts over. A handed-out address is never modified.
type addrCache struct {
	m map[netip.AddrPort]*net.UDPAddr
}

const addrCacheSize = 4096

func (a *addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	if u, ok := a.m[ap]; ok {
		return u
	}
	if a.m == nil || len(a.m) >= addrCacheSize {
		a.m = make(map[netip.AddrPort]*net.UDPAddr)
	}
	u := net.UDPAddrFromAddrPort(ap)
	a.m[ap] = u

	return u
}

func (c *clientPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.answerAllowed(p, addr) {
		return len(p), nil // dropped like a lost datagram
	}
	if r := c.deps.replies.rewriteError(p, addr, &c.notes); r != nil {
		_, err := c.PacketConn.WriteTo(r, addr)

		return len(p), err
	}
	out, send := c.deps.replies.limitUnsigned(p, &c.notes, addr)
	if !send {
		return len(p), nil // dropped like a lost datagram; the client retries or gives up
	}
	if c.raw != nil {
		c.deps.steer.issued(p, c) // before the client can use the token
	}
	if len(out) != len(p) {
		_, err := c.PacketConn.WriteTo(out, addr)

		return len(p), err
	}

	return c.PacketConn.WriteTo(p, addr)
}

// answerAllowed applies the per-source budget (sourcebudget.go) to STUN
// responses for sources that hold no allocation.
func (c *clientPacketConn) answerAllowed(p []byte, addr net.Addr) bool {
	// Responses have two zero bits first and class bit C1 set.
	if len(p) < stunHeaderSize || p[0]&0xc0 != 0 || p[0]&0x01 == 0 {
		return true
	}
	ap, ok := addrPort(addr)
	if !ok || c.deps.fast.lookup(fastKey{client: ap, server: c.local}) != nil {
		return true
	}
	if c.deps.answers.allow(ap.Addr(), time.Now()) {
		return true
	}
	c.deps.metrics.answersRateLimited.Inc()

	return false
}

func (c *clientPacketConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.PacketConn.Close()
		c.deps.steer.forgetSocket(c)
		c.tr.markClosed()
	})

	return err
}

// clientListener wraps a TCP or TLS listener handed to pion: it admits
// each accepted connection into its budget (connbudget.go) and wraps it.
type clientListener struct {
	net.Listener
	deps   *relayDeps
	tr     *tracked
	budget *connBudget
	once   sync.Once
}

func (l *clientListener) Accept() (net.Conn, error) {
	for {
		l.tr.enter()
		c, err := l.Listener.Accept()
		l.tr.leave()
		if err != nil {
			return nil, err
		}
		w := &clientConn{Conn: c, deps: l.deps}
		evicted, reason := l.budget.admit(w, time.Now(), func(t *connTicket) { w.ticket = t })
		if evicted != nil {
			_ = evicted.Close()
		}
		if reason != "" {
			l.deps.metrics.conns.refused.WithLabelValues(l.budget.kind, reason).Inc()
			_ = c.Close()

			continue
		}
		learn := l.deps.learn
		w.learn = func(m []byte) {
			l.deps.replies.noteRequest(&w.notes, m, c.RemoteAddr())
			if learn != nil {
				learn(m)
			}
		}
		if !l.deps.tracker.add(w, func(tr *tracked) { w.tr = tr }) {
			return nil, net.ErrClosed
		}
		l.deps.fast.addStream(w)

		return w, nil
	}
}

func (l *clientListener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.Listener.Close()
		l.tr.markClosed()
	})

	return err
}

// clientConn is one client TCP/TLS connection. Its reader splits the
// stream into frames: ChannelData on a bound channel goes straight to the
// peer (fastpath.go), everything else reaches pion one frame per read.
// After a ConnectionBind it carries raw relayed data and is left alone.
type clientConn struct {
	net.Conn
	deps *relayDeps
	tr   *tracked
	// ticket is the connection's place in its listener's budget; authed
	// is set once pion answered it a success (connbudget.go).
	ticket *connTicket
	authed atomic.Bool
	in     relay.FrameReader
	// stream is set once the connection moved to the event loop
	// (internal/relay); Conn is then the stream.
	stream relay.StreamConn
	moved  bool
	swapMu sync.Mutex // orders the move against Close
	closed bool
	learn  func([]byte)
	key    fastKey
	fa     atomic.Pointer[relay.Alloc]
	notes  requestNotes
	hs     sync.Once
	hsErr  error
	ended  sync.Once
	once   sync.Once
}

func (c *clientConn) Read(p []byte) (int, error) {
	c.tr.enter()
	defer c.tr.leave()
	if tc, ok := c.Conn.(*tls.Conn); ok {
		// pion only bounds the handshake of a *tls.Conn it sees; this
		// wrapper hides it, so bound it here.
		c.hs.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
			defer cancel()
			c.hsErr = tc.HandshakeContext(ctx)
		})
		if c.hsErr != nil {
			return 0, c.hsErr
		}
	}
	for {
		if c.stream != nil {
			return c.readStream(p)
		}
		if c.in.Raw() {
			if n := c.in.Drain(p); n > 0 {
				return n, nil
			}
			n, err := c.Conn.Read(p)
			if err != nil {
				c.readEnded()
			}

			return n, err
		}
		frame, kind := c.in.NextForPion(min(len(p), relay.StreamBufSize), c.toPeer)
		if kind != relay.FrameNeedMore {
			if kind == relay.FrameSTUN && len(frame) <= maxLearnFrame {
				c.learn(frame)
			}
			n := copy(p, frame)
			if kind == relay.FrameSTUN && !c.in.Raw() && !c.moved {
				c.moveToLoop()
			}

			return n, nil
		}
		if err := c.in.Fill(c.Conn); err != nil {
			c.readEnded()

			return 0, err
		}
	}
}

// moveToLoop hands a plain TCP control connection to the event loop
// after its first message: not a ConnectionBind, so this is not an RFC
// 6062 data connection, which carries raw bytes and stays here. Nothing
// else uses the connection yet (pion reads its first message now), and
// bytes already read move along with it.
func (c *clientConn) moveToLoop() {
	c.moved = true
	tcp, ok := c.Conn.(*net.TCPConn)
	if !ok || c.deps.loops.Len() == 0 {
		return // TLS, a vnet, or no event loops (off Linux)
	}
	c.swapMu.Lock()
	defer c.swapMu.Unlock()
	if c.closed {
		return
	}
	st, err := c.deps.loops.Stream(tcp, c.key.client, c.in)
	if err != nil {
		c.deps.log.Debug("turn: TCP connection stays off the event loop", "err", err)

		return
	}
	c.in = relay.FrameReader{}
	c.Conn, c.stream = st, st
	if err := st.Attach(c.toPeer, c.deps.metrics.tcpBacklogCloses.Inc); err != nil {
		st.End(err) // pion reads the error and closes the connection
	}
}

// toPeer relays ChannelData on the fast path once the allocation exists.
func (c *clientConn) toPeer(frame []byte) bool { return c.fa.Load().ToPeer(frame) }

// readStream returns the next message the event loop queued.
func (c *clientConn) readStream(p []byte) (int, error) {
	n, err := c.stream.Read(p)
	if err != nil {
		c.readEnded()

		return 0, err
	}
	if n >= 20 && n <= maxLearnFrame && p[0] < 0x40 {
		c.learn(p[:n])
	}

	return n, nil
}

// readEnded notes why pion is about to delete this client's allocation.
func (c *clientConn) readEnded() {
	c.ended.Do(func() { c.deps.closes.note(c.Conn.RemoteAddr()) })
}

// WriteChannelData sends a fast-path frame, padded to 4 bytes as stream
// transports require; frame has the capacity for the padding.
func (c *clientConn) WriteChannelData(frame []byte) error {
	n := len(frame)
	padded := frame[:(n+3)&^3]
	clear(padded[n:])
	if c.stream != nil { // on the event loop: never wait
		if err := c.stream.TryWrite(padded); err != nil {
			if errors.Is(err, relay.ErrBacklog) {
				c.deps.metrics.droppedClientBehind.Inc()

				return nil
			}

			return err
		}

		return nil
	}
	c.tr.enter()
	_, err := c.Conn.Write(padded)
	c.tr.leave()

	return err
}

func (c *clientConn) Write(p []byte) (int, error) {
	c.tr.enter()
	defer c.tr.leave()
	c.noteAuthenticated(p)
	// pion writes one whole STUN message per Write on a client connection.
	if r := c.deps.replies.rewriteError(p, c.Conn.RemoteAddr(), &c.notes); r != nil {
		_, err := c.Conn.Write(r)

		return len(p), err
	}
	out, send := c.deps.replies.limitUnsigned(p, &c.notes, c.Conn.RemoteAddr())
	if !send {
		return len(p), nil
	}
	if len(out) != len(p) {
		_, err := c.Conn.Write(out)

		return len(p), err
	}

	return c.Conn.Write(p)
}

func (c *clientConn) Close() error {
	var err error
	c.once.Do(func() {
		c.swapMu.Lock()
		c.closed = true
		err = c.Conn.Close()
		c.swapMu.Unlock()
		if c.ticket != nil {
			c.ticket.release()
		}
		c.deps.fast.removeStream(c)
		c.tr.markClosed()
	})

	return err
}

// noteAuthenticated ends the connection's authentication deadline when
// pion answers it a success other than to a Binding: only an
// authenticated request gets one.
func (c *clientConn) noteAuthenticated(p []byte) {
	// Success responses have class bits C1 = 1 (p[0]&0x01) and C0 = 0
	// (p[1]&0x10); a Binding success is 0x0101.
	if len(p) < stunHeaderSize || p[0]&0xc1 != 0x01 || p[1]&0x10 != 0 || (p[0] == 0x01 && p[1] == 0x01) {
		return
	}
	if c.ticket != nil && !c.authed.Swap(true) {
		c.ticket.authenticated()
	}
}

// maxLearnFrame is the largest STUN message shown to the authenticator;
// control requests are far smaller, larger frames are skipped.
const maxLearnFrame = 2048
