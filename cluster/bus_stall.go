package cluster

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// A subscription's connection can go silent without failing: a network
// partition that sends no reset, a stopped Redis. Receive then blocks
// until TCP gives up, which takes minutes, and everything published
// meanwhile misses this node with no outage seen. The watchdog pings the
// subscription (the pong comes back on it, like any message) and, when
// nothing at all has come back for stallAfter, counts the receive side
// as interrupted since it was last heard and starts a new subscription
// on a new connection; its first reply reports the recovery, as after a
// connection error (bus_outage.go).
const (
	stallPing  = time.Second
	stallAfter = 3 * time.Second
)

// watch pings ps every stallPing until ctx ends, and calls stop when ps
// has been silent for stallAfter.
func (b *Bus) watch(ctx context.Context, ps *redis.PubSub, stop func()) {
	t := time.NewTicker(stallPing)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		heard := time.Unix(0, b.heard.Load())
		if silent := time.Since(heard); silent >= stallAfter {
			b.log.Warn("cluster bus: subscription silent, reconnecting", "silent", silent.Round(time.Millisecond))
			b.mu.Lock()
			// A receive error already dated this interruption, more
			// closely than the last pong does.
			if b.outage.down&sideReceive == 0 {
				b.interruptedLocked(heard, sideReceive)
			}
			b.mu.Unlock()
			stop()
			return
		}
		// A write to a silent connection mostly succeeds (the kernel
		// buffers it); an error shows on the next Receive anyway.
		pctx, cancel := context.WithTimeout(ctx, stallPing)
		_ = ps.Ping(pctx)
		cancel()
	}
}
