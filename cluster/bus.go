package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bus is the cluster's message bus on Redis pub/sub: a node publishes
// events on topics (a conversation, an identity) and receives the topics
// it watches, those of the users connected to it. Pub/sub delivers at
// most once and only to nodes subscribed at that moment; that is all a
// live push needs, because every chat event is also in PostgreSQL and
// clients fill a gap in seq from there. Redis delivers one connection's
// publications in order, and this node publishes on one connection, so
// the events of one conversation sent through one node arrive in order.
type Bus struct {
	rdb    *redis.Client
	prefix string
	self   string
	log    *slog.Logger

	deliver func(topic string, payload []byte)
	out     chan busMsg

	mu      sync.Mutex
	want    map[string]bool // topics watched now
	changed chan struct{}   // one pending wake-up for the subscriber

	dropped int64 // publications dropped on a full queue; mu

	outage outageState // mu; see bus_outage.go
	// impaired is set while outage has begun and not yet been reported,
	// so the receive path checks it without taking mu per message.
	impaired  atomic.Bool
	onRecover func(Outage)
	// heard is when the subscription last received anything (unix ns);
	// the watchdog pings it and declares it stalled when silent.
	heard atomic.Int64
}

type busMsg struct {
	topic   string
	channel string
	payload []byte
	at      time.Time // when it was queued: a failed batch's loss began then
}

// busQueue bounds the publications waiting for Redis; beyond it new
// ones are dropped (counted), and receivers fill the gap from storage.
const busQueue = 4096

// NewBus makes the bus of node n. deliver is called on the bus's
// receiving goroutine, one payload at a time, for topics watched, never
// for this node's own publications; it must not block for long.
func NewBus(n *Node, deliver func(topic string, payload []byte), log *slog.Logger) *Bus {
	return &Bus{
		rdb: n.rdb, prefix: n.cfg.KeyPrefix + "bus:", self: n.self.ID, log: log,
		deliver: deliver,
		out:     make(chan busMsg, busQueue),
		want:    map[string]bool{},
		changed: make(chan struct{}, 1),
	}
}

// Publish queues payload for topic without blocking. The payload goes
// out framed with this node's id, so the node skips its own.
func (b *Bus) Publish(topic string, payload []byte) {
	now := time.Now()
	msg := busMsg{topic: topic, channel: b.prefix + topic, payload: frame(b.self, payload), at: now}
	select {
	case b.out <- msg:
	default:
		b.mu.Lock()
		b.dropped++
		n := b.dropped
		b.interruptedLocked(now, sidePublish, topic)
		b.mu.Unlock()
		if n&(n-1) == 0 { // 1, 2, 4, ...: a full queue does not flood the log
			b.log.Warn("cluster bus: publish queue full, event dropped (clients refill from storage)", "dropped", n)
		}
	}
}

// Watch starts (on) or stops receiving topic. It does not block: the
// subscription changes on the bus's goroutine, shortly after. Events
// published before the subscription takes effect are not received.
func (b *Bus) Watch(topic string, on bool) {
	b.mu.Lock()
	if on {
		b.want[topic] = true
	} else {
		delete(b.want, topic)
	}
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// Dropped is how many publications a full queue has dropped.
func (b *Bus) Dropped() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Run publishes and receives until ctx ends; its goroutines (publisher,
// and per subscription: keeper, receiver, watchdog) are joined before
// it returns.
func (b *Bus) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.publishLoop(ctx) })
	for ctx.Err() == nil {
		b.subscribeOnce(ctx)
	}
	wg.Wait()
	return nil
}

// subscribeOnce receives on one pub/sub until ctx ends or the watchdog
// finds it silent (bus_stall.go); then it closes it, so the next one
// starts on a new connection.
func (b *Bus) subscribeOnce(ctx context.Context) {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	have := map[string]bool{}
	var channels []string
	b.mu.Lock()
	for t := range b.want {
		have[t] = true
		channels = append(channels, b.prefix+t)
	}
	b.mu.Unlock()
	// The channels go with the connection: go-redis sends them before
	// anything else on it, so the first reply means all are subscribed.
	ps := b.rdb.Subscribe(sctx, channels...)
	b.heard.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Go(func() { b.keepSubscriptions(sctx, ps, have) })
	wg.Go(func() { b.receiveLoop(sctx, ps) })
	wg.Go(func() { b.watch(sctx, ps, stop) })
	<-sctx.Done()
	_ = ps.Close() // ends a blocked Receive; an error here changes nothing
	wg.Wait()
}

// publishLoop sends queued publications, several per round trip. When
// a batch fails it counts as lost (the outage's report names its
// topics), and the loop waits for Redis to answer before the next one,
// so that what is queued meanwhile goes out once Redis is back instead
// of failing one batch after the other.
func (b *Bus) publishLoop(ctx context.Context) {
	batch := make([]busMsg, 0, 256)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-b.out:
			batch = append(batch, m)
		}
	more:
		for range 255 {
			select {
			case m := <-b.out:
				batch = append(batch, m)
			default:
				break more
			}
		}
		pipe := b.rdb.Pipeline()
		for _, m := range batch {
			pipe.Publish(ctx, m.channel, m.payload)
		}
		_, err := pipe.Exec(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			b.healthy(sidePublish)
			continue
		}
		b.log.Warn("cluster bus: publish", "err", err, "events", len(batch))
		topics := make([]string, len(batch))
		for i, m := range batch {
			topics[i] = m.topic
		}
		b.interrupted(batch[0].at, sidePublish, topics...)
		if !b.awaitRedis(ctx) {
			return
		}
		b.healthy(sidePublish)
	}
}

// keepSubscriptions makes the pub/sub's channels follow b.want.
// have is what ps is subscribed to already.
func (b *Bus) keepSubscriptions(ctx context.Context, ps *redis.PubSub, have map[string]bool) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.changed:
		case <-retry.C:
		}
		var add, drop []string
		b.mu.Lock()
		for t := range b.want {
			if !have[t] {
				add = append(add, b.prefix+t)
			}
		}
		for t := range have {
			if !b.want[t] {
				drop = append(drop, b.prefix+t)
			}
		}
		b.mu.Unlock()
		if len(add) == 0 && len(drop) == 0 {
			continue
		}
		if err := b.apply(ctx, ps, add, drop, have); err != nil && ctx.Err() == nil {
			b.log.Warn("cluster bus: subscribe", "err", err)
			retry.Reset(time.Second)
		}
	}
}

func (b *Bus) apply(ctx context.Context, ps *redis.PubSub, add, drop []string, have map[string]bool) error {
	if len(add) > 0 {
		if err := ps.Subscribe(ctx, add...); err != nil {
			return err
		}
		for _, c := range add {
			have[c[len(b.prefix):]] = true
		}
	}
	if len(drop) > 0 {
		if err := ps.Unsubscribe(ctx, drop...); err != nil {
			return err
		}
		for _, c := range drop {
			delete(have, c[len(b.prefix):])
		}
	}
	return nil
}

// receiveLoop hands every received event to deliver. go-redis
// reconnects the pub/sub and re-subscribes its channels by itself: on a
// new connection it sends SUBSCRIBE for every channel before anything
// else, so the first reply read after an error (a subscription
// confirmation, or the pong of the ping sent here) means every watched
// topic is subscribed again. That is when the receive side counts as
// recovered (bus_outage.go).
func (b *Bus) receiveLoop(ctx context.Context, ps *redis.PubSub) {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			b.log.Debug("cluster bus: receive", "err", err)
			b.interrupted(time.Now(), sideReceive)
			select { // Redis is away: do not spin
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			// A node watching no topic would get no confirmation: the
			// pong is a reply every reconnection brings. Its error
			// shows again on the next Receive.
			_ = ps.Ping(ctx)
			continue
		}
		b.heard.Store(time.Now().UnixNano())
		if b.impaired.Load() {
			b.healthy(sideReceive)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // subscription confirmations, pongs
		}
		from, payload, ok := unframe([]byte(m.Payload))
		if !ok || from == b.self || !strings.HasPrefix(m.Channel, b.prefix) {
			continue
		}
		b.deliver(m.Channel[len(b.prefix):], payload)
	}
}

// frame prefixes payload with the sending node's id and a NUL byte.
func frame(node string, payload []byte) []byte {
	out := make([]byte, 0, len(node)+1+len(payload))
	out = append(out, node...)
	out = append(out, 0)
	return append(out, payload...)
}

func unframe(b []byte) (node string, payload []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}
