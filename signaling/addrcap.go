package signaling

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/parleyhq/parley/internal/peraddr"
)

// A WebSocket that has not joined costs a socket, buffers and two
// goroutines until join_timeout reaps it, and nobody has shown a token
// for it yet. One client address (IPv6: its /64) may hold at most
// signaling.max_unjoined_per_address of them; more are refused with
// HTTP 429 before the upgrade. A socket stops counting as soon as its
// join shows a valid token (it then joins, as a call or messaging
// session, or is closed), so an office behind one NAT
// address is limited only in how many of its people are joining at the
// very same moment.

// unjoinedSlot is one new WebSocket's place in the per-address cap.
type unjoinedSlot struct {
	hold  *peraddr.Hold
	conn  atomic.Pointer[wsConn]
	bound atomic.Bool
}

// admitUnjoined takes a slot for a new WebSocket from r's client
// address, or answers 429 and returns nil.
func (s *Server) admitUnjoined(w http.ResponseWriter, r *http.Request) *unjoinedSlot {
	slot := &unjoinedSlot{}
	hold, err := s.edge.unjoined.Acquire(peraddr.FromRequest(r), slot.waiting)
	if err != nil {
		s.edge.refuse("unjoined_cap")
		s.log.Info("websocket refused: too many unjoined sockets from one address", "remote", r.RemoteAddr, "client", peraddr.FromRequest(r))
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.JoinTimeout.Seconds()))))
		writeJSONError(w, http.StatusTooManyRequests, "too_many_connections",
			"too many connections from your address are waiting to join; join or close some first")
		return nil
	}
	slot.hold = hold
	return slot
}

// waiting is the cap's question: does this socket still count? It must
// stay cheap and lock-free (the cap asks it under its lock).
func (u *unjoinedSlot) waiting() bool {
	c := u.conn.Load()
	return c == nil || c.waitingForJoin()
}

// bind ties the slot to the upgraded connection, whose goroutine now
// releases it.
func (u *unjoinedSlot) bind(c *wsConn) {
	u.conn.Store(c)
	u.bound.Store(true)
}

// releaseUnlessBound is for the handler's exit paths before a
// connection took the slot over.
func (u *unjoinedSlot) releaseUnlessBound() {
	if !u.bound.Load() {
		u.hold.Release()
	}
}

func (u *unjoinedSlot) release() { u.hold.Release() }
