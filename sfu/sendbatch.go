package sfu

import (
	"sync/atomic"

	"github.com/parleyhq/parley/internal/rawudp"
)

// maxBurst is the most packets a writer sends in one corked section, so
// the datagrams it holds back wait for at most that many writes.
const maxBurst = 32

// corkSet is the SFU's raw UDP sockets, which a subscriber's writer corks
// around a burst of packets so that they leave in one sendmmsg (see
// internal/rawudp). The slice is replaced, never changed, when a socket
// is bound, so a writer uncorks exactly the sockets it corked.
type corkSet struct {
	conns atomic.Pointer[[]*rawudp.Conn]
}

// add registers a newly bound socket; portMux.mu is held.
func (s *corkSet) add(c *rawudp.Conn) {
	var next []*rawudp.Conn
	if old := s.conns.Load(); old != nil {
		next = append(next, *old...)
	}
	next = append(next, c)
	s.conns.Store(&next)
}

// cork corks every socket and returns them for uncork.
func (s *corkSet) cork() []*rawudp.Conn {
	p := s.conns.Load()
	if p == nil {
		return nil
	}
	for _, c := range *p {
		c.Cork()
	}
	return *p
}

func uncork(conns []*rawudp.Conn) {
	for _, c := range conns {
		c.Uncork()
	}
}

// sendErrors is the number of batched datagrams the kernel refused on
// these sockets (0 for a nil set).
func (s *corkSet) sendErrors() uint64 {
	if s == nil {
		return 0
	}
	p := s.conns.Load()
	if p == nil {
		return 0
	}
	var n uint64
	for _, c := range *p {
		n += c.SendErrors()
	}
	return n
}
