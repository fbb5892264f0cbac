package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestDrainerMovesCallsAfterTimeout: an operator's drain leaves the
// node's call alone for the drain timeout, then gives up the room's claim
// and asks its clients to reconnect, once per drain.
func TestDrainerMovesCallsAfterTimeout(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	ctx := context.Background()
	if ni, err := a.Place(ctx, "r"); err != nil || ni.ID != "a" {
		t.Fatalf("placement %+v %v", ni, err)
	}
	var moves atomic.Int32
	d := NewDrainer(a.Node, 600*time.Millisecond, func() []string { return []string{"r"} },
		func() int { moves.Add(1); return 2 }, slog.New(slog.DiscardHandler))
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(dctx) }()
	defer func() { cancel(); <-done }()

	if err := SetDrain(ctx, testConfig(t, p), "a", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "a to see its drain flag", a.Draining)
	began := time.Now()
	waitFor(t, eventually, "the calls to be moved", func() bool { return moves.Load() > 0 })
	if since := time.Since(began); since < 400*time.Millisecond {
		t.Errorf("calls moved %v into the drain, before the 600 ms timeout", since)
	}
	if _, ok, err := a.Host(ctx, "r"); err != nil || ok {
		t.Errorf("the room is still claimed after the move: %v %v", ok, err)
	}
	time.Sleep(time.Second)
	if n := moves.Load(); n != 1 {
		t.Errorf("calls moved %d times in one drain, want once", n)
	}
}
