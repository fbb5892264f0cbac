package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Drainer moves the calls off a draining node. While a node drains (an
// operator's `parley cluster drain`, or SIGTERM) it takes no new rooms
// and its calls go on; once cluster.drain_timeout has passed, the calls
// still there are moved: the node gives up its rooms' claims and asks
// every client to reconnect, and their rejoins place the rooms on other
// nodes. Chat connections are not moved; they stay until the node stops.
type Drainer struct {
	node    *Node
	timeout time.Duration
	active  func() []string // rooms with participants on this node
	move    func() int      // asks every call's client to reconnect; returns how many
	log     *slog.Logger

	mu    sync.Mutex
	since time.Time // when the current drain began; zero when not draining
	moved bool      // the current drain has moved its calls
}

// NewDrainer watches n; active and move are signaling's.
func NewDrainer(n *Node, timeout time.Duration, active func() []string, move func() int, log *slog.Logger) *Drainer {
	return &Drainer{node: n, timeout: timeout, active: active, move: move, log: log}
}

// drainPoll is how often the drain state and the node's rooms are looked
// at.
const drainPoll = 250 * time.Millisecond

// Run follows the node's drain state until ctx ends.
func (d *Drainer) Run(ctx context.Context) error {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.tick(ctx, time.Now())
		}
	}
}

func (d *Drainer) tick(ctx context.Context, now time.Time) {
	d.mu.Lock()
	if !d.node.Draining() {
		d.since, d.moved = time.Time{}, false
		d.mu.Unlock()
		return
	}
	if d.since.IsZero() {
		d.since = now
	}
	due := !d.moved && now.Sub(d.since) >= d.timeout
	d.mu.Unlock()
	if due {
		d.moveCalls(ctx)
	}
}

// moveCalls releases the claims of the rooms still here and asks their
// clients to reconnect, once per drain.
func (d *Drainer) moveCalls(ctx context.Context) {
	d.mu.Lock()
	if d.moved {
		d.mu.Unlock()
		return
	}
	d.moved = true
	d.mu.Unlock()
	rooms := d.active()
	if len(rooms) == 0 {
		return
	}
	// Claims first: a client that rejoins before its room's claim is
	// gone would be sent back here.
	for _, room := range rooms {
		if err := d.node.ReleaseRoom(ctx, room); err != nil {
			d.log.Warn("cluster: drain: release room", "room", room, "err", err)
		}
	}
	n := d.move()
	d.log.Info("cluster: drain: calls asked to reconnect on other nodes", "rooms", len(rooms), "clients", n)
}

// Drain is SIGTERM's: the node stops taking rooms, lets its calls go on
// for at most the drain timeout (less if they end, or ctx ends: a second
// signal), then moves what is left and gives the clients a moment to go.
func (d *Drainer) Drain(ctx context.Context) {
	if err := d.node.SetDraining(ctx, true); err != nil {
		d.log.Warn("cluster: drain: could not announce it (other nodes learn it when the lease lapses)", "err", err)
	}
	d.mu.Lock()
	if d.since.IsZero() {
		d.since = time.Now()
	}
	deadline := d.since.Add(d.timeout)
	d.mu.Unlock()
	d.log.Info("cluster: draining before stopping", "until", deadline.Format(time.RFC3339))
	empty := func() bool { return len(d.active()) == 0 }
	waitUntil(ctx, deadline, empty)
	if empty() {
		return
	}
	d.moveCalls(context.WithoutCancel(ctx))
	waitUntil(ctx, time.Now().Add(2*time.Second), empty)
}

// waitUntil polls cond until it holds, deadline passes or ctx ends.
func waitUntil(ctx context.Context, deadline time.Time, cond func() bool) {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for !cond() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
