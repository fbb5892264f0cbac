package turn

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxAddrNotes bounds each set of notes. A note is consumed by the event
// that follows it (a response, an allocation's deletion), so only what is
// in flight is stored; stale notes are dropped when the set fills.
const maxAddrNotes = 4096

// addrNotes remembers, per client address, that something just happened
// (a refused credential, a release, a closed connection) until the pion
// callback or response it explains consumes the note.
type addrNotes struct {
	n  atomic.Int32
	mu sync.Mutex
	m  map[string]time.Time
}

func (r *addrNotes) note(src net.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]time.Time)
	}
	now := time.Now()
	if len(r.m) >= maxAddrNotes {
		for k, t := range r.m {
			if now.Sub(t) > 5*time.Second {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxAddrNotes {
			return // the note is only an explanation; losing it is harmless
		}
	}
	r.m[src.String()] = now
	r.n.Store(int32(len(r.m))) //nolint:gosec // bounded by maxAddrNotes
}

// take consumes the note for dst, reporting whether there was one.
func (r *addrNotes) take(dst net.Addr) bool {
	if r.n.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := dst.String()
	if _, ok := r.m[k]; !ok {
		return false
	}
	delete(r.m, k)
	r.n.Store(int32(len(r.m))) //nolint:gosec // bounded by maxAddrNotes

	return true
}
