package cluster

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// startNodeVia is startNode reaching Redis at addr.
func startNodeVia(t *testing.T, prefix, id, addr string) *testNode {
	t.Helper()
	cfg := testConfig(t, prefix)
	cfg.NodeID = id
	cfg.RedisURL = "redis://" + addr + "/0"
	return runNode(t, cfg, Load{})
}

// outages collects what a bus reports through OnRecover.
type outages struct{ ch chan Outage }

func watchOutages(b *Bus) *outages {
	o := &outages{ch: make(chan Outage, 16)}
	b.OnRecover(func(x Outage) { o.ch <- x })
	return o
}

func (o *outages) none(t *testing.T, what string) {
	t.Helper()
	select {
	case x := <-o.ch:
		t.Fatalf("%s: an outage was reported: %+v", what, x)
	default:
	}
}

func (o *outages) next(t *testing.T, what string) Outage {
	t.Helper()
	select {
	case x := <-o.ch:
		return x
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no recovery reported within 10 s", what)
		return Outage{}
	}
}

// A node cut off from Redis reports one outage once its bus works again:
// when it began (so storage can fill what was lost), which of its
// publications were lost, and its subscriptions are back by then, so an
// event published after the report reaches it without any new Watch.
// A bus that watches nothing reports its recovery too.
func TestBusReportsRecoveryAfterOutage(t *testing.T) {
	p := newPrefix(t)
	cut := testkit.StartTCPProxy(t, "127.0.0.1:6379") // what a node sees of a Redis restart, without restarting the shared Redis
	a := startNodeVia(t, p, "a", cut.Addr())
	b := startNode(t, p, "b", Load{})

	gotA := &recorder{}
	busA := NewBus(a.Node, gotA.deliver, slog.New(slog.DiscardHandler))
	idle := NewBus(a.Node, func(string, []byte) {}, slog.New(slog.DiscardHandler))
	outA, outIdle := watchOutages(busA), watchOutages(idle)
	runBus(t, busA)
	runBus(t, idle)
	busB, _ := startBus(t, b)

	busA.Watch("conv:1", true)
	waitFor(t, eventually, "a's subscription", func() bool {
		busB.Publish("conv:1", []byte("probe"))
		return len(gotA.list()) > 0
	})
	time.Sleep(200 * time.Millisecond)
	outA.none(t, "steady bus")
	outIdle.none(t, "steady idle bus")

	cutAt := time.Now()
	cut.Down()
	busA.Publish("conv:2", []byte("lost")) // fails: Redis is away
	busB.Publish("conv:1", []byte("during"))
	// Until go-redis gives up on the publication (its dial and command
	// retries take about 3.3 s while Redis refuses connections), so it
	// fails rather than goes out late.
	waitFor(t, 20*time.Second, "the publication to fail", func() bool {
		busA.mu.Lock()
		defer busA.mu.Unlock()
		return busA.outage.lost["conv:2"]
	})
	outA.none(t, "Redis still away")
	cut.Up(t)

	o := outA.next(t, "a")
	if lo, hi := cutAt.Add(-LossMargin), cutAt.Add(-LossMargin+time.Second); o.Since.Before(lo) || o.Since.After(hi) {
		t.Errorf("outage since %v; the cut was at %v, so want within [%v, %v]", o.Since, cutAt, lo, hi)
	}
	if !o.Unsubscribed {
		t.Error("the outage does not say the subscription was interrupted")
	}
	if !slices.Equal(o.Lost, []string{"conv:2"}) || o.LostMore {
		t.Errorf("lost topics %v (more %v), want [conv:2]", o.Lost, o.LostMore)
	}
	// Subscribed again by the time of the report: one publication, no
	// probing, reaches a.
	busB.Publish("conv:1", []byte("after"))
	waitFor(t, eventually, "the event published after recovery", func() bool {
		return slices.Contains(gotA.list(), "conv:1=after")
	})

	if o := outIdle.next(t, "idle bus"); o.Since.Before(cutAt.Add(-LossMargin)) || len(o.Lost) != 0 {
		t.Errorf("idle bus reported %+v", o)
	}
	time.Sleep(300 * time.Millisecond)
	outA.none(t, "after the recovery")
	outIdle.none(t, "idle bus after the recovery")
}

// A connection to Redis that goes silent without failing (a partition
// without resets, a stopped Redis) is an outage too: the bus notices it
// within a few seconds, by the pings on its subscription going
// unanswered, instead of when TCP gives up minutes later; it reports it
// once Redis answers again, from the last time the subscription was
// known to work, so the refill covers what was published meanwhile; and
// it is subscribed again by then.
func TestBusDetectsSilentStall(t *testing.T) {
	p := newPrefix(t)
	px := testkit.StartFreezeProxy(t, "127.0.0.1:6379")
	a := startNodeVia(t, p, "a", px.Addr())
	b := startNode(t, p, "b", Load{})

	gotA := &recorder{}
	busA := NewBus(a.Node, gotA.deliver, slog.New(slog.DiscardHandler))
	outA := watchOutages(busA)
	runBus(t, busA)
	busB, _ := startBus(t, b)

	busA.Watch("conv:1", true)
	waitFor(t, eventually, "a's subscription", func() bool {
		busB.Publish("conv:1", []byte("probe"))
		return len(gotA.list()) > 0
	})
	time.Sleep(200 * time.Millisecond)
	outA.none(t, "steady bus")

	frozeAt := time.Now()
	px.Freeze()
	busB.Publish("conv:1", []byte("during"))
	waitFor(t, 6*time.Second, "the stall to be seen", func() bool {
		busA.mu.Lock()
		defer busA.mu.Unlock()
		return busA.outage.down&sideReceive != 0
	})
	t.Logf("stall seen %v after the freeze", time.Since(frozeAt).Round(10*time.Millisecond))
	outA.none(t, "Redis still silent")
	px.Thaw()

	o := outA.next(t, "a")
	if lo, hi := frozeAt.Add(-LossMargin-2*time.Second), frozeAt.Add(-LossMargin); o.Since.Before(lo) || o.Since.After(hi) {
		t.Errorf("outage since %v; the freeze was at %v, so want within [%v, %v]", o.Since, frozeAt, lo, hi)
	}
	if !o.Unsubscribed {
		t.Error("the outage does not say the subscription was interrupted")
	}
	busB.Publish("conv:1", []byte("after"))
	waitFor(t, eventually, "the event published after recovery", func() bool {
		return slices.Contains(gotA.list(), "conv:1=after")
	})
	time.Sleep(300 * time.Millisecond)
	outA.none(t, "after the recovery")
}
