package testkit

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// GoroutineBaseline records how many goroutines run now and returns a
// check for later: it waits (up to limit) until no more than that many
// run again, and fails the test with every goroutine's stack otherwise.
// It proves that code which started and stopped (or failed to start)
// left nothing behind. The count is process-wide, so the test must not
// run in parallel with others; goroutines exit asynchronously after a
// socket closes, hence the wait.
func GoroutineBaseline(t testing.TB, limit time.Duration) (check func()) {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(limit)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines still run %v later, %d before; stacks:\n%s",
					runtime.NumGoroutine(), limit, before, strings.TrimSpace(string(buf)))
			}
			time.Sleep(pollEvery)
		}
	}
}
