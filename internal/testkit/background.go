package testkit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// StopLimit bounds how long a component may take to return once its
// context is cancelled.
const StopLimit = 15 * time.Second

// RunInBackground calls run in a goroutine with a context that stop
// cancels. stop then waits for run to return and fails the test if it
// returns an error or does not return within StopLimit. Parley's
// components promise that Run returns only after every goroutine it started
// has exited, so waiting for it both checks that promise and keeps one
// test's goroutines out of the next.
//
// stop is registered with t.Cleanup; a test may call it earlier, to look
// at what shutdown did, and later calls do nothing.
func RunInBackground(t testing.TB, what string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(StopLimit):
				t.Errorf("%s did not return within %v of cancellation", what, StopLimit)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
