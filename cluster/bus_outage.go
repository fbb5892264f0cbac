package cluster

import (
	"context"
	"slices"
	"time"
)

// Outages of the bus. Pub/sub keeps nothing: what was published while a
// node's subscription was down, and what a node failed to publish, is
// lost for the sessions it was meant for. Every chat event is stored
// first, so the loss can be repaired from storage, but only by someone
// who knows it happened: the bus notices the interruption on both of its
// sides (a receive error; a failed or dropped publication) and, once
// both work again, reports it once with when it began (OnRecover).

// Outage is what the bus reports when it works again after an
// interruption.
type Outage struct {
	// Since is when the interruption began, minus LossMargin: events
	// stored from then on may have missed this node's sessions (pushes
	// from the other nodes lost) or the other nodes' (this node's
	// publications lost).
	Since time.Time
	// Unsubscribed says the receive side was interrupted: the other
	// nodes' publications may have missed this node. When only the
	// publish side failed, this node's sessions missed nothing.
	Unsubscribed bool
	// Lost are the topics of this node's publications that failed or
	// were dropped, sorted, at most maxLostTopics of them; LostMore says
	// there were more.
	Lost     []string
	LostMore bool
}

// LossMargin is taken off the moment an interruption is seen. A
// publication in flight when Redis went away was lost before its error
// showed (Redis may also have dropped a subscriber's output buffer), and
// an event's stored time comes from the clock of the node that stored
// it, so the nodes' clocks must agree within this much too.
const LossMargin = 2 * time.Second

// maxLostTopics bounds the topics an outage remembers.
const maxLostTopics = 1024

// The bus's two sides: either can see an interruption, and the bus has
// recovered when both work again.
const (
	sideReceive = 1 << iota
	sidePublish
)

// outageState is the interruption in progress; Bus.mu guards it.
type outageState struct {
	since    time.Time // zero: none
	down     int       // sides that failed and have not worked since
	failed   int       // sides that failed during the interruption
	lost     map[string]bool
	lostMore bool
}

// OnRecover sets fn, called once each time the bus works again after an
// interruption, on one of the bus's goroutines: it must not block (hand
// the repair to a goroutine of its own). Set it before Run.
func (b *Bus) OnRecover(fn func(Outage)) { b.onRecover = fn }

// interrupted records that side failed at (lost: topics of publications
// that did not go out).
func (b *Bus) interrupted(at time.Time, side int, lost ...string) {
	b.mu.Lock()
	b.interruptedLocked(at, side, lost...)
	b.mu.Unlock()
}

func (b *Bus) interruptedLocked(at time.Time, side int, lost ...string) {
	o := &b.outage
	if since := at.Add(-LossMargin); o.since.IsZero() || since.Before(o.since) {
		o.since = since
	}
	o.down |= side
	o.failed |= side
	for _, t := range lost {
		if o.lost[t] {
			continue
		}
		if len(o.lost) >= maxLostTopics {
			o.lostMore = true
			break
		}
		if o.lost == nil {
			o.lost = map[string]bool{}
		}
		o.lost[t] = true
	}
	b.impaired.Store(true)
}

// healthy records that side works; when no side is down any more, the
// interruption is over and reported.
func (b *Bus) healthy(side int) {
	if !b.impaired.Load() {
		return
	}
	b.mu.Lock()
	o := &b.outage
	o.down &^= side
	if o.down != 0 || o.since.IsZero() {
		b.mu.Unlock()
		return
	}
	out := Outage{Since: o.since, Unsubscribed: o.failed&sideReceive != 0, LostMore: o.lostMore}
	for t := range o.lost {
		out.Lost = append(out.Lost, t)
	}
	slices.Sort(out.Lost)
	b.outage = outageState{}
	b.impaired.Store(false)
	b.mu.Unlock()
	b.log.Info("cluster bus: working again; sessions are refilled from storage", "since", out.Since, "lost_topics", len(out.Lost))
	if b.onRecover != nil {
		b.onRecover(out)
	}
}

// awaitRedis waits until Redis answers a ping (false: ctx ended), with a
// backoff up to a second between tries.
func (b *Bus) awaitRedis(ctx context.Context) bool {
	wait := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := b.rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
