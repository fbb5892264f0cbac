package turn

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
)

// RFC 8656 section 7.2 lets a client reserve the port after an even relay
// port (EVEN-PORT with the R bit) and claim it with a second Allocate
// carrying the RESERVATION-TOKEN of the first; coturn's turnutils_uclient
// does so by default, for an RTCP relay next to the RTP one. pion keeps
// its reservations in the allocation manager of the socket that answered,
// one manager per listening socket, and the second Allocate comes from
// another client port, which the kernel may hash to another SO_REUSEPORT
// socket of the same address: pion there knows no such token and answers
// 508. steering sends that Allocate, and everything after it from the
// same client address, to the socket whose pion issued the token, which
// then holds the allocation. The reply goes out from the same address and
// port either way, so the client cannot tell.
//
// Only datagrams the fast path did not take are looked at, and only while
// a route or token exists; the common case costs one atomic load.
type steering struct {
	n atomic.Int32 // len(tokens) + len(routes), for the lock-free check

	mu     sync.Mutex
	tokens map[[8]byte]steerEntry  // token -> the socket that issued it
	routes map[steerKey]steerEntry // client and server address -> the socket holding its allocation
}

// steerKey is a client and the server address it talks to: a route is
// only ever to another socket of the same address, never across
// addresses (the client would get answers from an address it did not ask).
type steerKey struct{ client, server netip.AddrPort }

type steerEntry struct {
	to *clientPacketConn
	// expires is when an unused token or a route whose allocation was
	// never created is dropped; zero while the allocation lives.
	expires time.Time
}

// reservationLifetime is how long a token is honoured, as pion's own
// reservations (RFC 8656 asks for about 30 seconds).
const reservationLifetime = 30 * time.Second

// maxSteer bounds each table. Tokens come only from allocations that
// authenticated, and expire; beyond the bound the reservation is not
// steered and may be refused (508), the behaviour without steering.
const maxSteer = 4096

func newSteering() *steering {
	return &steering{tokens: make(map[[8]byte]steerEntry), routes: make(map[steerKey]steerEntry)}
}

// issued notes, from a response about to be written by c, a reservation
// token pion issued: an Allocate success with RESERVATION-TOKEN.
func (st *steering) issued(p []byte, c *clientPacketConn) {
	// Allocate success response: type 0x0103.
	if len(p) < stunHeaderSize || p[0] != 0x01 || p[1] != 0x03 {
		return
	}
	m := &stun.Message{Raw: p}
	if m.Decode() != nil {
		return
	}
	v, err := m.Get(stun.AttrReservationToken)
	if err != nil || len(v) != 8 {
		return
	}
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if !room(st.tokens, now) {
		return
	}
	st.tokens[[8]byte(v)] = steerEntry{to: c, expires: now.Add(reservationLifetime)}
	st.count()
}

// route returns the socket that must read b, a datagram from client that
// arrived on c: another socket when b claims a reservation issued there
// or when client's allocation lives there; nil otherwise.
func (st *steering) route(b []byte, from netip.AddrPort, c *clientPacketConn) *clientPacketConn {
	if st.n.Load() == 0 {
		return nil
	}
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	key := steerKey{client: from, server: c.local}
	if e, ok := st.routes[key]; ok && (e.expires.IsZero() || now.Before(e.expires)) {
		return e.to
	}
	// Allocate request: type 0x0003.
	if len(b) < stunHeaderSize || b[0] != 0x00 || b[1] != 0x03 {
		return nil
	}
	m := &stun.Message{Raw: b}
	if m.Decode() != nil {
		return nil
	}
	v, err := m.Get(stun.AttrReservationToken)
	if err != nil || len(v) != 8 {
		return nil
	}
	e, ok := st.tokens[[8]byte(v)]
	if !ok || e.to == c || e.to.local != c.local || !now.Before(e.expires) || !room(st.routes, now) {
		return nil
	}
	// Retransmissions of this Allocate and the client's later requests
	// follow it; the route outlives the token only if the allocation
	// is created (allocated clears its expiry).
	st.routes[key] = steerEntry{to: e.to, expires: now.Add(reservationLifetime)}
	st.count()

	return e.to
}

// allocated keeps client's route to server, if any, for the
// allocation's life.
func (st *steering) allocated(client, server netip.AddrPort) {
	if st.n.Load() == 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	key := steerKey{client: client, server: server}
	if e, ok := st.routes[key]; ok {
		e.expires = time.Time{}
		st.routes[key] = e
	}
}

// released drops client's route to server when its allocation ends.
func (st *steering) released(client, server netip.AddrPort) {
	if st.n.Load() == 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.routes, steerKey{client: client, server: server})
	st.count()
}

// forgetSocket drops everything pointing at c, which is closing.
func (st *steering) forgetSocket(c *clientPacketConn) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, e := range st.tokens {
		if e.to == c {
			delete(st.tokens, k)
		}
	}
	for k, e := range st.routes {
		if e.to == c {
			delete(st.routes, k)
		}
	}
	st.count()
}

// count refreshes n; callers hold mu.
func (st *steering) count() {
	st.n.Store(int32(len(st.tokens) + len(st.routes))) //nolint:gosec // both bounded by maxSteer
}

// room makes space in a full table by dropping expired entries and
// reports whether one more fits. Callers hold the steering lock.
func room[K comparable](m map[K]steerEntry, now time.Time) bool {
	if len(m) < maxSteer {
		return true
	}
	for k, e := range m {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(m, k)
		}
	}

	return len(m) < maxSteer
}
