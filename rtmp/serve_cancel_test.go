package rtmp

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestServeReturnsWhenCancelledBeforeStart is the composition root's
// case: a sibling component fails at start, so Serve's context is over
// before Serve begins. Serve must still close the listener and return
// instead of accepting forever.
func TestServeReturnsWhenCancelledBeforeStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Enabled = true
	srv, err := New(cfg, Deps{Keys: fakeKeys{}, Sink: newFakeSink(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Repeated because the race is between Serve's own closer goroutine
	// and go-rtmp registering the listener.
	for i := range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, l) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			l.Close() // lets the stuck Serve return before the test ends
			<-done
			t.Fatalf("round %d: Serve did not return within 10s of a context that was already cancelled", i)
		}
	}
}
