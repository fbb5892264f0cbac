package turn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5"
	pionturn "github.com/pion/turn/v5"
	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/turn/internal/relay"
)

var errFamilyNotConfigured = errors.New("no public address configured for this address family")

// relayGenerator makes relay sockets inside the configured port range
// (through pion's port-range generator, one per address family) and wraps
// each so relayed traffic is counted, capped and tracked for shutdown.
type relayGenerator struct {
	deps       *relayDeps
	v4, v6     *pionturn.RelayAddressGeneratorPortRange
	bind4      net.IP
	bind6      net.IP
	bytesPerS  int
	validateMu sync.Mutex
	// held are reserved P+1 relay sockets (reservation.go).
	held heldPorts
}

func newRelayGenerator(deps *relayDeps, cfg Config, nw transport.Net) *relayGenerator {
	g := &relayGenerator{deps: deps, bytesPerS: cfg.AllocationBandwidth}
	mk := func(public, bind string) *pionturn.RelayAddressGeneratorPortRange {
		if public == "" {
			return nil
		}

		return &pionturn.RelayAddressGeneratorPortRange{
			RelayAddress: net.ParseIP(public),
			Address:      bind,
			MinPort:      uint16(cfg.RelayPortMin), //nolint:gosec // Validate bounds it to 1..65535.
			MaxPort:      uint16(cfg.RelayPortMax), //nolint:gosec // Validate bounds it to 1..65535.
			MaxRetries:   64,
			Net:          nw, // nil: pion uses the host network
		}
	}
	bind4, bind6 := cfg.RelayBindIPv4, cfg.RelayBindIPv6
	if bind4 == "" {
		bind4 = "0.0.0.0"
	}
	if bind6 == "" {
		bind6 = "::"
	}
	g.v4 = mk(cfg.PublicIPv4, bind4)
	g.v6 = mk(cfg.PublicIPv6, bind6)
	g.bind4 = net.ParseIP(bind4)
	g.bind6 = net.ParseIP(bind6)

	return g
}

// Validate is called by pion once per listener; it initialises the inner
// generators.
func (g *relayGenerator) Validate() error {
	g.validateMu.Lock()
	defer g.validateMu.Unlock()
	for _, inner := range []*pionturn.RelayAddressGeneratorPortRange{g.v4, g.v6} {
		if inner == nil {
			continue
		}
		if err := inner.Validate(); err != nil {
			return fmt.Errorf("relay address generator: %w", err)
		}
	}
	if g.v4 == nil && g.v6 == nil {
		return errFamilyNotConfigured
	}

	return nil
}

func (g *relayGenerator) pick(network string) (*pionturn.RelayAddressGeneratorPortRange, error) {
	inner := g.v4
	if strings.HasSuffix(network, "6") {
		inner = g.v6
	}
	if inner == nil {
		return nil, fmt.Errorf("%s relay: %w", network, errFamilyNotConfigured)
	}

	return inner, nil
}

func (g *relayGenerator) limiters() (toPeer, toClient *rate.Limiter) {
	if g.bytesPerS <= 0 {
		return nil, nil
	}
	// A fifth of a second of burst absorbs a video keyframe without letting
	// an allocation run far above its cap.
	burst := max(g.bytesPerS/5, 4096)

	return rate.NewLimiter(rate.Limit(g.bytesPerS), burst), rate.NewLimiter(rate.Limit(g.bytesPerS), burst)
}

// AllocatePacketConn makes a UDP relay socket.
func (g *relayGenerator) AllocatePacketConn(conf pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	inner, err := g.pick(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	conn, addr, err := g.bindPacketConn(inner, conf)
	if err != nil {
		return nil, nil, fmt.Errorf("allocate %s relay: %w", conf.Network, err)
	}
	setBuffers(conn, relaySocketBuffer)
	w := &relayPacketConn{PacketConn: conn, m: g.deps.metrics, fast: g.deps.fast}
	w.toPeer, w.toClient = g.limiters()
	if !g.deps.tracker.add(w, func(tr *tracked) { w.tr = tr }) {
		return nil, nil, net.ErrClosed
	}
	g.deps.fast.addRelay(w, addr)

	return w, addr, nil
}

// AllocateListener makes a TCP relay listener (RFC 6062).
func (g *relayGenerator) AllocateListener(conf pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	inner, err := g.pick(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	ln, addr, err := inner.AllocateListener(conf)
	if err != nil {
		return nil, nil, fmt.Errorf("allocate %s relay: %w", conf.Network, err)
	}
	w := &relayListener{Listener: ln, g: g}
	if !g.deps.tracker.add(w, func(tr *tracked) { w.tr = tr }) {
		return nil, nil, net.ErrClosed
	}

	return w, addr, nil
}

// AllocateConn dials a peer for a TCP Connect request. pion passes the
// advertised relay address as the local address; behind 1:1 NAT that IP is
// not local, so bind to the relay bind address with the same port.
func (g *relayGenerator) AllocateConn(conf pionturn.AllocateConnConfig) (net.Conn, error) {
	inner, err := g.pick(conf.Network)
	if err != nil {
		return nil, err
	}
	if la, ok := conf.LocalAddr.(*net.TCPAddr); ok {
		bind := g.bind4
		if strings.HasSuffix(conf.Network, "6") {
			bind = g.bind6
		}
		conf.LocalAddr = &net.TCPAddr{IP: bind, Port: la.Port}
	}
	c, err := inner.AllocateConn(conf)
	if err != nil {
		return nil, fmt.Errorf("connect to peer: %w", err)
	}

	return g.wrapConn(c)
}

func (g *relayGenerator) wrapConn(c net.Conn) (net.Conn, error) {
	w := &relayConn{Conn: c, m: g.deps.metrics, ctx: g.deps.ctx}
	w.toPeer, w.toClient = g.limiters()
	if !g.deps.tracker.add(w, func(tr *tracked) { w.tr = tr }) {
		return nil, net.ErrClosed
	}

	return w, nil
}

// maxRelayPayload is the largest peer datagram relayed, pion's own limit
// (its relay loop reads into a buffer of this size).
const maxRelayPayload = relay.MaxPayload

// relayPacketConn is an allocation's UDP relay socket. pion writes what
// the client sends (to a peer) and reads what peers send (for the client).
// Datagrams from peers on bound channels are relayed to the client by the
// fast path (fastpath.go): on the event loop for UDP clients, in ReadFrom
// (pion's goroutine for the allocation) for TCP clients and on a vnet.
// ReadFrom returns only the others to pion.
type relayPacketConn struct {
	net.PacketConn
	raw relay.Socket // nil on a vnet, off Linux, and for TCP clients
	// lastPeer and lastAddr let ReadFrom hand pion the same *net.UDPAddr
	// while datagrams keep coming from one peer (the usual case) instead of
	// allocating one per datagram. Only pion's single reader of this socket
	// touches them; a handed-out address is never modified.
	lastPeer         netip.AddrPort
	lastAddr         *net.UDPAddr
	m                *metrics
	tr               *tracked
	toPeer, toClient *rate.Limiter
	once             sync.Once
	// swapMu orders useLoop's change of socket against Close.
	swapMu sync.Mutex
	closed bool

	fast       *fastPath
	fa         atomic.Pointer[relay.Alloc]
	advertised netip.AddrPort
	// frame is where peer datagrams land when ReadFrom reads the socket
	// itself: 4 bytes left free for the ChannelData header, 3 at the end
	// for padding.
	frame []byte
}

func (c *relayPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.toPeer != nil && !c.toPeer.AllowN(time.Now(), len(p)) {
		// Over the cap: drop like a congested link would. Reporting success
		// keeps pion from logging every dropped datagram as a failure.
		c.m.droppedBandwidthOut.Inc()

		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.m.bytesToPeer.Add(float64(n))
		c.m.packetsToPeer.Inc()
	}

	return n, err
}

// SendToPeer is WriteTo for the fast path: no net.Addr, no allocation.
func (c *relayPacketConn) SendToPeer(p []byte, to netip.AddrPort) {
	if c.toPeer != nil && !c.toPeer.AllowN(time.Now(), len(p)) {
		c.m.droppedBandwidthOut.Inc()

		return
	}
	var err error
	if c.raw != nil {
		err = c.raw.SendTo(p, to)
	} else {
		_, err = c.PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(to))
	}
	if err != nil {
		c.m.droppedSendFailedTo.Inc()

		return
	}
	c.m.bytesToPeer.Add(float64(len(p)))
	c.m.packetsToPeer.Inc()
}

// fromPeer counts and caps a peer's datagram (in frame[4:4+n]) and relays
// it on the fast path when it can. It reports whether the datagram is
// dealt with (relayed or dropped); toStream says whether relaying to a
// TCP client is allowed on the calling goroutine.
func (c *relayPacketConn) fromPeer(frame []byte, n int, from netip.AddrPort, toStream bool) bool {
	if c.toClient != nil && !c.toClient.AllowN(time.Now(), n) {
		c.m.droppedBandwidthIn.Inc()

		return true
	}
	c.m.bytesToClient.Add(float64(n))
	c.m.packetsToClient.Inc()
	fa := c.fa.Load()

	return fa != nil && (toStream || !fa.BlockingOut()) && fa.ToClient(frame, n, from)
}

// useLoop moves the socket to the event loop. It is called when pion
// reports the allocation of a UDP client, before pion starts reading the
// socket. Allocations of TCP clients stay on Go's poller: their relaying
// writes to TCP, which may block, so it belongs on the allocation's own
// goroutine (ReadFrom), not on the loop.
func (c *relayPacketConn) useLoop(loops *relay.Loops, client netip.AddrPort) error {
	// pion's lifetime timer may close the allocation at any moment.
	c.swapMu.Lock()
	defer c.swapMu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	raw, err := loops.RelaySocket(c.PacketConn, client, c.m.droppedBacklogIn)
	if err != nil {
		return err
	}
	c.PacketConn, c.raw = raw, raw
	if err := raw.Attach(c.loopDatagram); err != nil {
		_ = raw.Close() // pion's reader gets an error and deletes the allocation

		return err
	}

	return nil
}

// loopDatagram is the event loop's look at a peer datagram.
func (c *relayPacketConn) loopDatagram(frame []byte, n int, from netip.AddrPort) bool {
	return c.fromPeer(frame, n, from, false)
}

func (c *relayPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.raw != nil {
		return c.readQueued(p)
	}
	// Not on the loop: a TCP client's allocation, or a vnet.
	if c.frame == nil {
		c.frame = make([]byte, 4+maxRelayPayload+3)
	}
	for {
		buf := c.frame[4 : 4+min(len(p), maxRelayPayload)]
		c.tr.enter()
		n, addr, err := c.PacketConn.ReadFrom(buf)
		c.tr.leave()
		if err != nil {
			return n, addr, err
		}
		from, _ := addrPort(addr)
		if c.fromPeer(c.frame, n, from, true) {
			continue
		}

		return copy(p, buf[:n]), addr, nil
	}
}

// readQueued returns what the event loop left for pion.
func (c *relayPacketConn) readQueued(p []byte) (int, net.Addr, error) {
	c.tr.enter()
	n, from, err := c.raw.Recv(p)
	c.tr.leave()
	if err != nil {
		return 0, nil, err
	}
	if c.lastAddr == nil || from != c.lastPeer {
		c.lastPeer, c.lastAddr = from, net.UDPAddrFromAddrPort(from)
	}

	return n, c.lastAddr, nil
}

func (c *relayPacketConn) Close() error {
	var err error
	c.once.Do(func() {
		c.swapMu.Lock()
		c.closed = true
		err = c.PacketConn.Close()
		c.swapMu.Unlock()
		c.fast.removeRelay(c)
		c.tr.markClosed()
	})

	return err
}

// relayListener is an allocation's TCP relay listener; peers connect to it.
type relayListener struct {
	net.Listener
	g    *relayGenerator
	tr   *tracked
	once sync.Once
}

func (l *relayListener) Accept() (net.Conn, error) {
	l.tr.enter()
	c, err := l.Listener.Accept()
	l.tr.leave()
	if err != nil {
		return nil, err
	}

	return l.g.wrapConn(c)
}

func (l *relayListener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.Listener.Close()
		l.tr.markClosed()
	})

	return err
}

// relayConn is a TCP connection between the relay and a peer. A bandwidth
// cap slows it (TCP pushes back to the sender) rather than dropping data.
type relayConn struct {
	net.Conn
	m                *metrics
	ctx              context.Context
	tr               *tracked
	toPeer, toClient *rate.Limiter
	once             sync.Once
}

func (c *relayConn) Read(p []byte) (int, error) {
	if c.toClient != nil && len(p) > c.toClient.Burst() {
		p = p[:c.toClient.Burst()]
	}
	c.tr.enter()
	n, err := c.Conn.Read(p)
	c.tr.leave()
	if n > 0 {
		c.m.bytesToClient.Add(float64(n))
		c.m.packetsToClient.Inc()
		if c.toClient != nil {
			if werr := c.toClient.WaitN(c.ctx, n); werr != nil && err == nil {
				err = werr
			}
		}
	}

	return n, err
}

func (c *relayConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if c.toPeer != nil {
			chunk = p[:min(len(p), c.toPeer.Burst())]
			if err := c.toPeer.WaitN(c.ctx, len(chunk)); err != nil {
				return written, err
			}
		}
		c.tr.enter()
		n, err := c.Conn.Write(chunk)
		c.tr.leave()
		written += n
		c.m.bytesToPeer.Add(float64(n))
		c.m.packetsToPeer.Inc()
		if err != nil {
			return written, err
		}
		p = p[n:]
	}

	return written, nil
}

func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.tr.markClosed()
	})

	return err
}
