package signaling

import (
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/signaling/proto"
)

// tokenRefresher sends a joined session a fresh token right after join
// and then every TokenTTL/2, so the client can rejoin after a network
// drop even when its original token has expired (docs/protocol.md,
// "token"). It runs on timer callbacks, not on the connection's writer,
// and stop waits for a callback that already started.
type tokenRefresher struct {
	issue func() (string, error)
	out   outbound
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	running sync.WaitGroup // timer callbacks
}

func newTokenRefresher(issue func() (string, error), out outbound, every time.Duration, log *slog.Logger) *tokenRefresher {
	return &tokenRefresher{issue: issue, out: out, every: every, log: log}
}

// start sends the first token and schedules the next.
func (r *tokenRefresher) start() {
	r.send()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scheduleLocked()
}

func (r *tokenRefresher) scheduleLocked() {
	if r.stopped {
		return
	}
	r.running.Add(1)
	r.timer = time.AfterFunc(r.every, r.fire)
}

func (r *tokenRefresher) fire() {
	defer r.running.Done()
	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	if stopped {
		return
	}
	r.send()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scheduleLocked()
}

func (r *tokenRefresher) send() {
	tok, err := r.issue()
	if err != nil {
		r.log.Error("issuing refresh token", "err", err)
		return
	}
	r.out.enqueue(proto.Encode(proto.TypeToken, "", proto.TokenBody{Token: tok}))
}

// stop ends the refreshes: no token is sent once it returns.
func (r *tokenRefresher) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.timer != nil && r.timer.Stop() {
		r.running.Done() // the callback will never run
	}
	r.mu.Unlock()
	r.running.Wait()
}
