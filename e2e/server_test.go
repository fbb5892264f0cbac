package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// The admin API credentials in the config of every test's server.
const (
	testAPIKey    = testkit.ParleyAPIKey
	testAPISecret = testkit.ParleyAPISecret
)

// server is one parley process started by a test (testkit's launcher:
// free loopback ports, loopback-only ICE, TURN off unless a test turns
// it on with its own free ports, stopped with SIGTERM when the test
// ends, a data race in it fails the test).
type server = testkit.Parley

// startServer runs the parley binary and waits for /healthz.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with configuration merged over
// testkit's defaults (for example to enable TURN or shorten the ring
// timeout).
func startServerWith(t *testing.T, cfg map[string]any) *server {
	t.Helper()
	return testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: cfg})
}

// testContext is bounded by the test's deadline (minus a margin for
// cleanup) or by max, whichever is sooner.
func testContext(t *testing.T, max time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	if dl, ok := t.Deadline(); ok {
		ctx2, cancel2 := context.WithDeadline(ctx, dl.Add(-15*time.Second))
		t.Cleanup(cancel2)
		ctx = ctx2
	}
	t.Cleanup(cancel)
	return ctx
}
