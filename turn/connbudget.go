package turn

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// TURN over TCP and TLS is what users behind UDP-blocking firewalls
// have left, so its listeners must stay open to them while anyone can
// open connections and say nothing. A connBudget guards one kind of
// listener (plain TCP or TLS, each its own budget so a flood on one
// cannot take the other's room):
//
//   - a pool of at most max connections;
//   - per client address (IPv4 /32, IPv6 /64: one host's or one
//     subscriber's block) at most perIP connections, and at most
//     pendingPerIP not yet authenticated;
//   - a connection that has not authenticated within authTimeout of its
//     accept is closed (connreaper.go);
//   - when the pool is full, a newcomer takes the place of the oldest
//     unauthenticated connection; authenticated ones are never displaced.
//
// A connection counts as authenticated once pion sends it a success
// response to anything but a Binding: every TURN method needs a valid
// credential first.
type connBudget struct {
	kind         string // "tcp" or "tls": the metrics label
	max          int    // 0: unlimited
	perIP        int    // 0: unlimited
	pendingPerIP int    // 0: unlimited
	authTimeout  time.Duration
	m            *connMetrics

	mu    sync.Mutex
	total int
	ips   map[netip.Prefix]*ipConns
	// pending holds the unauthenticated connections' tickets in accept
	// order, which is deadline order: every one gets the same timeout.
	pending *list.List
	// wake tells the reaper that pending went from empty to non-empty.
	wake chan struct{}
}

type ipConns struct{ all, pending int }

// connTicket is one admitted connection's place in the budget.
type connTicket struct {
	b        *connBudget
	prefix   netip.Prefix
	deadline time.Time
	conn     net.Conn
	elem     *list.Element // in pending; nil once authenticated or released
	released bool
}

// Refusal reasons, the "reason" label of tcp_connections_refused_total.
const (
	refusedPoolFull       = "pool_full"
	refusedAddressCap     = "address_cap"
	refusedAddressPending = "address_unauthenticated_cap"
)

func newConnBudget(kind string, maxConns int, cfg Config, m *connMetrics, wake chan struct{}) *connBudget {
	return &connBudget{
		kind:         kind,
		max:          maxConns,
		perIP:        cfg.MaxTCPConnectionsPerIP,
		pendingPerIP: cfg.MaxTCPUnauthenticatedPerIP,
		authTimeout:  cfg.TCPAuthTimeout,
		m:            m,
		ips:          make(map[netip.Prefix]*ipConns),
		pending:      list.New(),
		wake:         wake,
	}
}

// clientPrefix is the unit of the per-address caps.
func clientPrefix(a net.Addr) netip.Prefix {
	ap, ok := addrPort(a)
	if !ok {
		return netip.Prefix{}
	}
	bits := 32
	if ap.Addr().Is6() {
		bits = 64
	}
	p, _ := ap.Addr().Prefix(bits)

	return p
}

// admit takes c into the budget and hands its ticket to set (under the
// budget's lock, so whoever closes c later sees it), or refuses it
// (reason non-empty; the caller closes c). evicted, when not nil, is an
// unauthenticated connection that gave up its place: the caller closes it.
func (b *connBudget) admit(c net.Conn, now time.Time, set func(*connTicket)) (evicted net.Conn, reason string) {
	prefix := clientPrefix(c.RemoteAddr())
	b.mu.Lock()
	defer b.mu.Unlock()
	ip := b.ips[prefix]
	if ip == nil {
		ip = &ipConns{}
	}
	switch {
	case b.perIP > 0 && ip.all >= b.perIP:
		return nil, refusedAddressCap
	case b.pendingPerIP > 0 && ip.pending >= b.pendingPerIP:
		return nil, refusedAddressPending
	}
	if b.max > 0 && b.total >= b.max {
		front := b.pending.Front()
		if front == nil {
			return nil, refusedPoolFull
		}
		victim, _ := front.Value.(*connTicket)
		victim.releaseLocked()
		evicted = victim.conn
		b.m.evicted.WithLabelValues(b.kind).Inc()
	}
	b.ips[prefix] = ip
	ip.all++
	ip.pending++
	b.total++
	t := &connTicket{b: b, prefix: prefix, deadline: now.Add(b.authTimeout), conn: c}
	t.elem = b.pending.PushBack(t)
	set(t)
	if b.pending.Len() == 1 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	b.m.active.WithLabelValues(b.kind).Inc()
	b.m.unauthenticated.WithLabelValues(b.kind).Inc()

	return evicted, ""
}

// authenticated ends t's deadline: the connection keeps its place.
func (t *connTicket) authenticated() {
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.released || t.elem == nil {
		return
	}
	b.pending.Remove(t.elem)
	t.elem = nil
	b.ips[t.prefix].pending--
	b.m.unauthenticated.WithLabelValues(b.kind).Dec()
}

// release gives t's place back when its connection closes.
func (t *connTicket) release() {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	t.releaseLocked()
}

func (t *connTicket) releaseLocked() {
	if t.released {
		return
	}
	t.released = true
	b := t.b
	ip := b.ips[t.prefix]
	if t.elem != nil {
		b.pending.Remove(t.elem)
		t.elem = nil
		ip.pending--
		b.m.unauthenticated.WithLabelValues(b.kind).Dec()
	}
	if ip.all--; ip.all == 0 {
		delete(b.ips, t.prefix)
	}
	b.total--
	b.m.active.WithLabelValues(b.kind).Dec()
}

// expired takes the connections whose deadline passed out of the budget
// and returns them (for the caller to close) with the next deadline
// (zero: none pending).
func (b *connBudget) expired(now time.Time) (conns []net.Conn, next time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for e := b.pending.Front(); e != nil; e = b.pending.Front() {
		t, _ := e.Value.(*connTicket)
		if now.Before(t.deadline) {
			return conns, t.deadline
		}
		t.releaseLocked()
		conns = append(conns, t.conn)
	}

	return conns, time.Time{}
}
