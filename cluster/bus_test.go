package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// recorder collects what a bus delivers.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) deliver(topic string, payload []byte) {
	r.mu.Lock()
	r.got = append(r.got, topic+"="+string(payload))
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func startBus(t *testing.T, n *testNode) (*Bus, *recorder) {
	t.Helper()
	r := &recorder{}
	b := NewBus(n.Node, r.deliver, slog.New(slog.DiscardHandler))
	runBus(t, b)
	return b, r
}

// runBus runs b until the test's cleanup (set its OnRecover first).
func runBus(t *testing.T, b *Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestBusDeliversWatchedTopicsOfOtherNodesInOrder(t *testing.T) {
	p := newPrefix(t)
	a, b := startNode(t, p, "a", Load{}), startNode(t, p, "b", Load{})
	busA, gotA := startBus(t, a)
	busB, gotB := startBus(t, b)
	busA.Watch("conv:1", true)
	busB.Watch("conv:1", true)
	// A subscription takes effect shortly after Watch: probe until one
	// event gets through, then check order and exclusivity on fresh ones.
	waitFor(t, eventually, "a's subscription", func() bool {
		busB.Publish("conv:1", []byte("probe"))
		return len(gotA.list()) > 0
	})
	for i := range 100 {
		busB.Publish("conv:1", []byte{byte('0' + i%10)})
	}
	busB.Publish("conv:2", []byte("unwatched"))
	var got []string // without the probes, some of which may still arrive
	waitFor(t, eventually, "100 events at a", func() bool {
		got = got[:0]
		for _, g := range gotA.list() {
			if g != "conv:1=probe" {
				got = append(got, g)
			}
		}
		return len(got) >= 100
	})
	for i, g := range got[:100] {
		if want := "conv:1=" + string(rune('0'+i%10)); g != want {
			t.Fatalf("event %d: got %q, want %q (order kept per publisher)", i, g, want)
		}
	}
	if len(gotB.list()) != 0 {
		t.Fatalf("b received its own publications: %v", gotB.list()[:1])
	}
	busA.Watch("conv:1", false)
	// After unwatching, a later event on another watched topic arrives
	// while conv:1's does not: the unsubscribe is applied before it.
	busA.Watch("user:x", true)
	waitFor(t, eventually, "a's subscription to user:x", func() bool {
		busB.Publish("conv:1", []byte("late"))
		busB.Publish("user:x", []byte("marker"))
		l := gotA.list()
		return l[len(l)-1] == "user:x=marker"
	})
	busB.Publish("conv:1", []byte("after"))
	busB.Publish("user:x", []byte("end"))
	waitFor(t, eventually, "the end marker", func() bool { l := gotA.list(); return l[len(l)-1] == "user:x=end" })
	if slices.Contains(gotA.list(), "conv:1=after") {
		t.Fatal("an unwatched topic was delivered")
	}
}
