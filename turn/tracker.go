package turn

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// tracker follows every socket the server hands to pion. pion's Server
// starts goroutines of its own (a read loop per listener and per TCP
// client, a relay loop per allocation, copy loops for TCP relays) and its
// Close neither closes accepted TCP connections nor waits. Since every one
// of those goroutines spends its life blocked on one of our sockets, Run
// closes all tracked sockets and then waits until no call into any of them
// is in progress: at that point pion's goroutines have nothing left to do
// but return.
type tracker struct {
	mu     sync.Mutex
	items  map[*tracked]struct{}
	closed bool
}

// tracked is one socket: how many calls are inside it, and whether it closed.
type tracked struct {
	owner    *tracker
	closer   io.Closer
	inFlight atomic.Int32
	isClosed atomic.Bool
}

func newTracker() *tracker { return &tracker{items: make(map[*tracked]struct{})} }

// add registers c and hands its entry to set before shutdown can see it.
// After shutdown began it closes c instead and returns false.
func (t *tracker) add(c io.Closer, set func(*tracked)) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = c.Close()

		return false
	}
	tr := &tracked{owner: t, closer: c}
	set(tr)
	t.items[tr] = struct{}{}
	t.mu.Unlock()

	return true
}

// enter, leave and markClosed accept a nil receiver: a wrapper whose
// registration was refused during shutdown is closed before it has one.
func (tr *tracked) enter() {
	if tr != nil {
		tr.inFlight.Add(1)
	}
}

func (tr *tracked) leave() {
	if tr == nil {
		return
	}
	if tr.inFlight.Add(-1) == 0 && tr.isClosed.Load() {
		tr.owner.remove(tr)
	}
}

// markClosed records that the socket was closed (by pion or by us); the
// entry goes away once no call is inside it, so a long-running server does
// not accumulate closed sockets.
func (tr *tracked) markClosed() {
	if tr == nil {
		return
	}
	tr.isClosed.Store(true)
	if tr.inFlight.Load() == 0 {
		tr.owner.remove(tr)
	}
}

func (t *tracker) remove(tr *tracked) {
	t.mu.Lock()
	delete(t.items, tr)
	t.mu.Unlock()
}

// shutdown closes every tracked socket, including ones added later.
func (t *tracker) shutdown() {
	t.mu.Lock()
	t.closed = true
	items := make([]*tracked, 0, len(t.items))
	for tr := range t.items {
		items = append(items, tr)
	}
	t.mu.Unlock()
	for _, tr := range items {
		_ = tr.closer.Close()
	}
}

// wait polls until every tracked socket is closed and idle, or the limit
// passes; it returns how many were still busy.
func (t *tracker) wait(limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		t.mu.Lock()
		busy := len(t.items)
		t.mu.Unlock()
		if busy == 0 || time.Now().After(deadline) {
			return busy
		}
		time.Sleep(5 * time.Millisecond)
	}
}
