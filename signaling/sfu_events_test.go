package signaling

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/parleyhq/parley/sfu"
)

// The event queue holds SFU events until start (a client never sees an
// offer before "joined"), applies them in order on its own goroutine,
// calls overflow past maxPendingEvents, and after close applies nothing.
func TestEventQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var applied []string
		overflows := 0
		q := newEventQueue(func(ev peerEvent) {
			mu.Lock()
			applied = append(applied, ev.track.SID)
			mu.Unlock()
		}, func() { overflows++ })
		got := func() []string {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(applied)
		}
		ev := func(sid string) peerEvent { return peerEvent{kind: evTrackPublished, track: sfu.TrackInfo{SID: sid}} }

		q.push(ev("a"))
		q.push(ev("b"))
		if a := got(); len(a) != 0 {
			t.Fatalf("applied %q before start", a)
		}
		q.start()
		q.push(ev("c"))
		if a := got(); !slices.Equal(a, []string{"a", "b", "c"}) {
			t.Fatalf("applied %q, want a b c in order", a)
		}

		q.mu.Lock()
		q.started = false // hold events to fill the queue
		q.mu.Unlock()
		for range maxPendingEvents + 1 {
			q.push(ev("x"))
		}
		if overflows != 1 {
			t.Fatalf("%d overflows after %d events, want 1", overflows, maxPendingEvents+1)
		}
		q.close()
		q.start()
		q.push(ev("late"))
		if a := got(); len(a) != 3 {
			t.Fatalf("applied %d events after close, want none", len(a)-3)
		}
	})
}
