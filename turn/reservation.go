package turn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v5"
)

// An Allocate with EVEN-PORT and the R bit asks for an even relay port P
// and for P+1 to be kept for a second Allocate that presents the
// RESERVATION-TOKEN from the answer (RFC 8656 section 7.2). pion v5
// probes for a free even port, releases it, binds it again, records P in
// the token and binds P+1 only when the token comes back; meanwhile
// nothing stops another allocation (or another program) from taking P+1,
// and the second Allocate then fails with 508. coturn binds both ports at
// once and keeps the second socket for the token.
//
// pion tells the generator which case it is in through the requested
// port: an even one for EVEN-PORT, P+1 (odd) for a token. So the
// generator binds the pair itself (P from pion's probe when P+1 is free
// too, another even pair otherwise), holds P+1's socket, and hands that
// socket over when P+1 is requested. pion builds the token from the port
// this returns, so the two agree. pion issues a token whether or not the
// R bit was set; a hold nobody claims is closed after
// reservationLifetime, and the number of holds is bounded.

// maxHeldPorts bounds the sockets held for reservations. Each comes with
// an allocation, which quotas bound too; beyond it P+1 is not held (pion's
// behaviour).
const maxHeldPorts = 4096

// pairTries bounds the even pairs tried when pion's port has a busy
// neighbour.
const pairTries = 64

var errNoEvenPair = errors.New("no free even/odd relay port pair")

// heldPorts are the P+1 sockets waiting for their RESERVATION-TOKEN.
type heldPorts struct {
	mu     sync.Mutex
	ports  map[heldKey]heldPort
	closed bool // after shutdown nothing more is held
}

type heldKey struct {
	network string
	port    int
}

type heldPort struct {
	conn    net.PacketConn
	addr    net.Addr
	expires time.Time
}

// hold keeps conn for a later take; it reports false (and the caller
// closes conn) when the table is full.
func (h *heldPorts) hold(k heldKey, conn net.PacketConn, addr net.Addr, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(now)
	if h.closed {
		return false
	}
	if h.ports == nil {
		h.ports = make(map[heldKey]heldPort)
	}
	if len(h.ports) >= maxHeldPorts {
		return false
	}
	h.ports[k] = heldPort{conn: conn, addr: addr, expires: now.Add(reservationLifetime)}

	return true
}

// take returns the socket held for k, if any.
func (h *heldPorts) take(k heldKey, now time.Time) (net.PacketConn, net.Addr, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(now)
	p, ok := h.ports[k]
	if !ok {
		return nil, nil, false
	}
	delete(h.ports, k)

	return p.conn, p.addr, true
}

// expireLocked closes holds past their lifetime. Every allocation passes
// here, so a forgotten hold lasts until the next allocation or shutdown.
func (h *heldPorts) expireLocked(now time.Time) {
	for k, p := range h.ports {
		if !now.Before(p.expires) {
			_ = p.conn.Close()
			delete(h.ports, k)
		}
	}
}

// closeAll releases every hold (shutdown).
func (h *heldPorts) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for k, p := range h.ports {
		_ = p.conn.Close()
		delete(h.ports, k)
	}
}

// bindPacketConn binds a UDP relay socket: the held P+1 of a reservation
// for an odd requested port, an even port with its neighbour held for an
// even one, any port in the range otherwise.
func (g *relayGenerator) bindPacketConn(inner *pionturn.RelayAddressGeneratorPortRange,
	conf pionturn.AllocateListenerConfig,
) (net.PacketConn, net.Addr, error) {
	now := time.Now()
	switch {
	case conf.RequestedPort == 0:
		return inner.AllocatePacketConn(conf)
	case conf.RequestedPort%2 == 1:
		if conn, addr, ok := g.held.take(heldKey{conf.Network, conf.RequestedPort}, now); ok {
			return conn, addr, nil
		}

		return inner.AllocatePacketConn(conf) // not held (table full or expired): try the port itself
	}
	// Even: pion's probed port first, then random even ports of the range.
	port := conf.RequestedPort
	for range pairTries {
		if port+1 <= int(inner.MaxPort) {
			conn, addr, err := g.bindPair(inner, conf, port, now)
			if err == nil {
				return conn, addr, nil
			}
		}
		port = randomEven(int(inner.MinPort), int(inner.MaxPort))
		if port < 0 {
			break
		}
	}

	return nil, nil, fmt.Errorf("%s port range %d-%d: %w", conf.Network, inner.MinPort, inner.MaxPort, errNoEvenPair)
}

// bindPair binds port and port+1 and holds the second.
func (g *relayGenerator) bindPair(inner *pionturn.RelayAddressGeneratorPortRange,
	conf pionturn.AllocateListenerConfig, port int, now time.Time,
) (net.PacketConn, net.Addr, error) {
	conf.RequestedPort = port
	conn, addr, err := inner.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	conf.RequestedPort = port + 1
	next, nextAddr, err := inner.AllocatePacketConn(conf)
	if err != nil {
		_ = conn.Close()

		return nil, nil, err
	}
	if !g.held.hold(heldKey{conf.Network, port + 1}, next, nextAddr, now) {
		_ = next.Close()
	}

	return conn, addr, nil
}

// randomEven returns an even port p with min <= p and p+1 <= max, or -1
// when the range holds no such pair.
func randomEven(minPort, maxPort int) int {
	first := (minPort + 1) &^ 1
	if first+1 > maxPort {
		return -1
	}
	pairs := (maxPort-first-1)/2 + 1

	return first + 2*rand.IntN(pairs) //nolint:gosec // port choice, not a secret
}
