package sfu

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/peraddr"
)

// ICE-TCP connections are accepted by pion's TCPMux, which keeps every
// connection it is handed: an idle one until its first-packet deadline,
// and one that sent a STUN binding request for any ufrag (even one the
// server never issued) for as long as it keeps it open, buffering up to
// ReadBufferSize frames of up to 8 KiB that no agent will read. None of
// that is limited per client, so one address could hold thousands of
// sockets and goroutines and megabytes of buffers. guardedListener sits
// between the TCP listener and the mux and bounds what a connection may
// do before it is authenticated.
//
// "Authenticated" is taken to be the server's first write on the
// connection. The only thing the server ever sends first is a STUN
// binding response or request of an ICE agent, and an agent answers a
// binding request only after checking its MESSAGE-INTEGRITY with the
// session's password (and sends its own checks only to candidates the
// peer signalled). So a connection the server has not written to is one
// no agent has accepted yet, and the peer on it may send nothing but
// STUN; the read budget below is generous for that.

// preAuthReadBudget is how many bytes a connection may send before the
// server's first write. A client's binding requests are about 100 bytes
// each, retransmitted a handful of times while ICE runs.
const preAuthReadBudget = 16 << 10

// errPreAuthBudget is what pion's read loop sees when a connection sends
// more than preAuthReadBudget without being authenticated.
var errPreAuthBudget = errors.New("sfu: ice-tcp connection sent too much before ICE authenticated it")

// guardedListener caps, per address key, the ICE-TCP connections the
// server holds that are not yet authenticated, and wraps each accepted
// connection in a guardedConn.
type guardedListener struct {
	net.Listener
	caps *peraddr.Cap
	m    *metrics
}

func newGuardedListener(l net.Listener, perAddr int, m *metrics) (*guardedListener, error) {
	caps, err := peraddr.NewCap(peraddr.CapConfig{PerAddr: perAddr})
	if err != nil {
		return nil, fmt.Errorf("sfu: tcp_unauthenticated_per_addr: %w", err)
	}
	return &guardedListener{Listener: l, caps: caps, m: m}, nil
}

// Accept returns the next connection whose address is under its cap;
// the others are closed here, before pion starts a goroutine for them.
// Each loop turn consumes one connection the kernel accepted, so the
// loop ends when a connection passes or the listener fails.
//
// An accept error other than the listener's close is waited out and
// retried (5 ms, doubling up to a second): pion's TCPMux stops accepting
// for good at the first error its listener returns, so a passing one (a
// process out of file descriptors during a flood, say) would otherwise
// end ICE-TCP for every later call.
func (l *guardedListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.m.iceTCPRefused[refusedAcceptError].Inc()
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		g := &guardedConn{Conn: c, m: l.m}
		h, err := l.caps.Acquire(remoteAddr(c), func() bool { return !g.authed.Load() })
		if err != nil {
			l.m.iceTCPRefused[refusedPerAddrCap].Inc()
			_ = c.Close()
			continue
		}
		g.hold = h
		l.m.iceTCPUnauthenticated.Inc()
		return g, nil
	}
}

// remoteAddr is the connection's peer IP; a non-IP peer (vnet in tests
// gives real ones) maps to the zero Addr, which peraddr counts as one
// key.
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// guardedConn is one accepted ICE-TCP connection. Until the server first
// writes to it, it counts against its address's cap and may send at most
// preAuthReadBudget bytes.
type guardedConn struct {
	net.Conn
	m      *metrics
	hold   *peraddr.Hold
	authed atomic.Bool
	read   atomic.Int64 // bytes read before authentication

	endOnce sync.Once // ends the unauthenticated phase once
}

func (c *guardedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.authed.Load() && c.read.Add(int64(n)) > preAuthReadBudget {
		c.m.iceTCPRefused[refusedReadBudget].Inc()
		_ = c.Close()
		return 0, errPreAuthBudget
	}
	return n, err
}

func (c *guardedConn) Write(b []byte) (int, error) {
	if !c.authed.Load() {
		c.authed.Store(true)
		c.endUnauthenticated()
	}
	return c.Conn.Write(b)
}

func (c *guardedConn) Close() error {
	c.endUnauthenticated()
	return c.Conn.Close()
}

// endUnauthenticated gives the cap slot back and updates the gauge, once,
// whether the connection authenticated or closed first.
func (c *guardedConn) endUnauthenticated() {
	c.endOnce.Do(func() {
		c.hold.Release()
		c.m.iceTCPUnauthenticated.Dec()
	})
}
