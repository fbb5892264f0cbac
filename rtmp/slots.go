package rtmp

import (
	"net"
	"net/netip"
	"time"
)

// Connection slots. Every accepted connection holds one until it closes;
// it is "unauthenticated" from accept until its publish key is accepted.
// Unauthenticated connections are capped per address and in total (at
// most half of max_connections), and when a cap is reached the new
// connection closes the oldest unauthenticated one in that scope rather
// than being turned away: a publisher completes connect..publish in well
// under a second, a squatter holds its slot until handshake_timeout, so
// squatting all slots takes a steady stream of new connections instead of
// a handful every handshake_timeout. Only publishing connections are
// never evicted; when they fill a cap the new connection is refused.

type slotState uint8

const (
	slotUnauthenticated slotState = iota
	slotPublishing
	slotReleased // evicted or closed: counted nowhere
)

type addrSlots struct{ total, unauth int }

// slotTable is the Server's accounting; Server.mu guards it.
type slotTable struct {
	total, unauth int
	perAddr       map[netip.Prefix]*addrSlots
}

// addrKey is the unit of the per-address caps: an IPv4 address, or the
// /64 of an IPv6 address (one host usually has a whole /64).
func addrKey(a net.Addr) netip.Prefix {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{} // not TCP (tests over pipes): one shared bucket
	}
	ip := ta.AddrPort().Addr().Unmap()
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, _ := ip.Prefix(bits)
	return p
}

// admitLocked finds room for a new connection from addr: it returns the
// unauthenticated connection to evict for it (nil if there is room), or a
// refusal reason when only publishing connections fill the cap.
func (s *Server) admitLocked(addr netip.Prefix) (victim *deadlineConn, reason string) {
	t := &s.slots
	as := t.perAddr[addr]
	if as == nil {
		as = &addrSlots{}
	}
	switch {
	case as.total >= s.cfg.MaxConnectionsPerIP || as.unauth >= s.cfg.MaxUnauthenticatedPerIP:
		if as.unauth == 0 {
			return nil, reasonPerIP
		}
		return s.oldestUnauthLocked(&addr), reasonEvictedPerIP
	case t.total >= s.cfg.MaxConnections || t.unauth >= s.cfg.MaxUnauthenticated:
		if t.unauth == 0 {
			return nil, reasonTooManyConns
		}
		return s.oldestUnauthLocked(nil), reasonEvicted
	}
	return nil, ""
}

// oldestUnauthLocked is the unauthenticated connection accepted first,
// from addr if given.
func (s *Server) oldestUnauthLocked(addr *netip.Prefix) *deadlineConn {
	var oldest *deadlineConn
	for c := range s.conns {
		if c.slot != slotUnauthenticated || (addr != nil && c.addr != *addr) {
			continue
		}
		if oldest == nil || c.acceptedAt.Before(oldest.acceptedAt) {
			oldest = c
		}
	}
	return oldest
}

func (s *Server) takeSlotLocked(c *deadlineConn) {
	as := s.slots.perAddr[c.addr]
	if as == nil {
		as = &addrSlots{}
		s.slots.perAddr[c.addr] = as
	}
	as.total++
	as.unauth++
	s.slots.total++
	s.slots.unauth++
	c.slot = slotUnauthenticated
	s.m.connOpened()
	s.m.unauthChanged(+1)
}

// publishingLocked moves c from the unauthenticated pool to the
// publishers'; it is the moment the larger limits apply.
func (s *Server) publishingLocked(c *deadlineConn) {
	if c.slot != slotUnauthenticated {
		return
	}
	c.slot = slotPublishing
	s.slots.perAddr[c.addr].unauth--
	s.slots.unauth--
	s.m.unauthChanged(-1)
}

// releaseSlotLocked frees c's slot (at eviction or close, whichever is
// first).
func (s *Server) releaseSlotLocked(c *deadlineConn) {
	if c.slot == slotReleased {
		return
	}
	as := s.slots.perAddr[c.addr]
	as.total--
	s.slots.total--
	if c.slot == slotUnauthenticated {
		as.unauth--
		s.slots.unauth--
		s.m.unauthChanged(-1)
	}
	if as.total == 0 {
		delete(s.slots.perAddr, c.addr)
	}
	c.slot = slotReleased
	s.m.connClosed()
}

// newSlotConn is a deadlineConn for nc with its slot fields set.
func (s *Server) newSlotConn(nc net.Conn, now time.Time) *deadlineConn {
	return &deadlineConn{Conn: nc, s: s, addr: addrKey(nc.RemoteAddr()), acceptedAt: now, handshakeUntil: now.Add(s.cfg.HandshakeTimeout)}
}
