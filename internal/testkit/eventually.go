package testkit

import (
	"context"
	"testing"
	"time"
)

// pollEvery is short next to the latencies tests wait for, and long enough
// that a polling test does not starve the code it waits on of CPU.
const pollEvery = 10 * time.Millisecond

// Eventually polls cond until it holds, failing the test after limit.
// Tests of concurrent code wait for a state rather than sleep a guessed
// time: fast when the state comes early, bounded when it never does.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(pollEvery)
	}
}

// Poll calls cond every interval until it holds (true), limit passes or
// ctx ends (false): for tests that report what they saw instead of
// failing at once.
func Poll(ctx context.Context, limit, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(every):
		}
	}
}
