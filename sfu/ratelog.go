package sfu

import (
	"fmt"
	"sync"
	"time"

	pionlogging "github.com/pion/logging"
	"github.com/prometheus/client_golang/prometheus"
)

// pion's UDP and TCP muxes log a warning for every malformed STUN
// datagram and every ICE-TCP connection that does not speak ICE, so
// anyone who can reach the media ports could write to the operator's
// log at line rate (measured: ~3,000 lines for 24,000 junk datagrams).
// rateLogger passes at most burst lines per window for one pion scope
// and counts the rest; debug and trace lines, off in production, pass
// through untouched so a developer who turns them on sees everything.

// Defaults for the media ports' loggers: enough lines to diagnose a
// misbehaving client, too few to matter under a flood.
const (
	logBurst  = 20
	logWindow = 10 * time.Second
)

type rateLogger struct {
	next       pionlogging.LeveledLogger
	burst      int
	window     time.Duration
	now        func() time.Time
	suppressed prometheus.Counter

	mu      sync.Mutex
	start   time.Time // of the current window
	used    int       // lines passed in the current window
	dropped int       // lines suppressed in the current window
}

func newRateLogger(next pionlogging.LeveledLogger, suppressed prometheus.Counter) *rateLogger {
	return &rateLogger{next: next, burst: logBurst, window: logWindow, now: time.Now, suppressed: suppressed}
}

// allow reports whether one more line may pass now. When a window with
// suppressed lines ends, it first says how many were dropped, so the
// log shows that an attack happened and how large it was.
func (r *rateLogger) allow() bool {
	r.mu.Lock()
	now := r.now()
	var report int
	if now.Sub(r.start) >= r.window {
		report = r.dropped
		r.start, r.used, r.dropped = now, 0, 0
	}
	ok := r.used < r.burst
	if ok {
		r.used++
	} else {
		r.dropped++
	}
	r.mu.Unlock()
	if report > 0 {
		r.next.Warnf("suppressed %d further messages in %v (junk on the media port?)", report, r.window)
	}
	if !ok {
		r.suppressed.Inc()
	}
	return ok
}

func (r *rateLogger) Trace(msg string)                  { r.next.Trace(msg) }
func (r *rateLogger) Tracef(format string, args ...any) { r.next.Tracef(format, args...) }
func (r *rateLogger) Debug(msg string)                  { r.next.Debug(msg) }
func (r *rateLogger) Debugf(format string, args ...any) { r.next.Debugf(format, args...) }

func (r *rateLogger) Info(msg string) {
	if r.allow() {
		r.next.Info(msg)
	}
}

func (r *rateLogger) Infof(format string, args ...any) {
	if r.allow() {
		r.next.Info(fmt.Sprintf(format, args...))
	}
}

func (r *rateLogger) Warn(msg string) {
	if r.allow() {
		r.next.Warn(msg)
	}
}

func (r *rateLogger) Warnf(format string, args ...any) {
	if r.allow() {
		r.next.Warn(fmt.Sprintf(format, args...))
	}
}

func (r *rateLogger) Error(msg string) {
	if r.allow() {
		r.next.Error(msg)
	}
}

func (r *rateLogger) Errorf(format string, args ...any) {
	if r.allow() {
		r.next.Error(fmt.Sprintf(format, args...))
	}
}
