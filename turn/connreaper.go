package turn

import (
	"context"
	"time"
)

// reapUnauthenticated closes the TCP/TLS connections that did not
// authenticate within tcp_auth_timeout (connbudget.go) until ctx ends.
// Run owns it and waits for it. Every connection of a budget has the same
// timeout, so each budget's oldest pending connection is the next due and
// one timer serves them all; admit wakes the loop when a budget's pending
// list stops being empty.
func (s *Server) reapUnauthenticated(ctx context.Context, budgets []*connBudget, wake <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		var next time.Time
		for _, b := range budgets {
			conns, due := b.expired(now)
			for _, c := range conns {
				s.metrics.conns.authTimeouts.WithLabelValues(b.kind).Inc()
				_ = c.Close() // pion's reader sees the error and forgets the connection
			}
			if !due.IsZero() && (next.IsZero() || due.Before(next)) {
				next = due
			}
		}
		var fire <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-fire:
		}
	}
}
