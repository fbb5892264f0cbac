package chatload

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestSessionFailsAfterBound: with no server to talk to, a queued message
// stays pending and then turns failed once FailAfter has passed, and the
// session keeps retrying the connection until ctx ends.
func TestSessionFailsAfterBound(t *testing.T) {
	port := testkit.FreeTCPPort(t) // nothing listens there
	s := NewSession(SessionOptions{
		URL:        "ws://127.0.0.1:" + strconv.Itoa(port) + "/ws",
		Token:      func() (string, error) { return "unused", nil },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		FailAfter: 300 * time.Millisecond,
	})
	id := s.Send("conv", "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	time.Sleep(100 * time.Millisecond)
	if s.Pending() != 1 || len(s.Failed()) != 0 {
		t.Fatalf("before FailAfter: pending %d failed %v, want 1 pending", s.Pending(), s.Failed())
	}
	for s.Pending() != 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	f := s.Failed()
	if f[id] == nil || f[id].Code != "timeout" {
		t.Fatalf("failed = %v, want %s with code timeout", f, id)
	}
	if st := s.Stats(); st.DialFailures < 3 || st.Connects != 0 {
		t.Errorf("stats %+v: want repeated failed connects and none made", st)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}
