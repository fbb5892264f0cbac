package nackgen

import (
	"math/bits"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// Config sets a Generator's timing; zero fields take the defaults.
type Config struct {
	// Interval is how often due NACKs are sent (default 100 ms, as
	// pion's generator and browsers do).
	Interval time.Duration
	// Grace lets a reordered packet arrive before its first NACK
	// (default 10 ms).
	Grace time.Duration
	// Max is how many times one packet is NACKed at most (default 6:
	// a repair stops the NACKs, so this only bounds the cost of a packet
	// the publisher no longer has).
	Max int
	// SenderSSRC goes into every NACK.
	SenderSSRC uint32
	// RTT is the current round trip to the publisher, or 0 if unknown.
	// A packet is NACKed again only after 1.25 round trips (at least
	// half an interval), when its retransmission had time to arrive.
	// Nil: unknown.
	RTT func() time.Duration
}

const (
	defaultInterval = 100 * time.Millisecond
	defaultGrace    = 10 * time.Millisecond
	defaultMax      = 6
)

// Generator sends the NACKs of one connection's incoming streams, one
// Tracker per media SSRC. The caller feeds the Trackers and runs Run on
// a goroutine it owns.
type Generator struct {
	cfg  Config
	send func([]rtcp.Packet) error

	mu      sync.Mutex
	streams map[uint32]*Tracker
}

// New returns a Generator that sends its NACKs through send.
func New(cfg Config, send func([]rtcp.Packet) error) *Generator {
	if cfg.Interval <= 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.Grace <= 0 {
		cfg.Grace = defaultGrace
	}
	if cfg.Max <= 0 {
		cfg.Max = defaultMax
	}
	return &Generator{cfg: cfg, send: send, streams: map[uint32]*Tracker{}}
}

// Add returns the Tracker of a stream, new or the one already added for
// ssrc.
func (g *Generator) Add(ssrc uint32) *Tracker {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.streams[ssrc]
	if t == nil {
		t = &Tracker{}
		g.streams[ssrc] = t
	}
	return t
}

// Remove stops NACKing for ssrc.
func (g *Generator) Remove(ssrc uint32) {
	g.mu.Lock()
	delete(g.streams, ssrc)
	g.mu.Unlock()
}

// Run sends the due NACKs every Interval until stop is closed.
func (g *Generator) Run(stop <-chan struct{}) {
	tick := time.NewTicker(g.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			g.Tick(now)
		}
	}
}

// maxPairs is how many NACK pairs (4 bytes each) go in one RTCP
// batch: with the headers and SRTCP's trailer the packet stays well
// within an MTU, where a burst of scattered losses on several streams
// would not.
const maxPairs = 100

// Tick sends one round of due NACKs, one TransportLayerNack per stream,
// in compound packets of at most maxPairs pairs, and reports how many
// packets it NACKed.
func (g *Generator) Tick(now time.Time) int {
	p := g.policy()
	var batches [][]rtcp.Packet
	var batch []rtcp.Packet
	inBatch, n := 0, 0
	g.mu.Lock()
	for ssrc, t := range g.streams {
		pairs := t.Due(now, p, nil)
		for _, pair := range pairs {
			n += 1 + bits.OnesCount16(uint16(pair.LostPackets))
		}
		for len(pairs) > 0 {
			k := min(len(pairs), maxPairs-inBatch)
			batch = append(batch, &rtcp.TransportLayerNack{SenderSSRC: g.cfg.SenderSSRC, MediaSSRC: ssrc, Nacks: pairs[:k]})
			pairs, inBatch = pairs[k:], inBatch+k
			if inBatch == maxPairs {
				batches, batch, inBatch = append(batches, batch), nil, 0
			}
		}
	}
	g.mu.Unlock()
	if batch != nil {
		batches = append(batches, batch)
	}
	for _, b := range batches {
		// An error means the connection is closing; Run ends with it.
		_ = g.send(b)
	}
	return n
}

func (g *Generator) policy() Policy {
	retry := g.cfg.Interval / 2
	if g.cfg.RTT != nil {
		if rtt := g.cfg.RTT(); rtt+rtt/4 > retry {
			retry = rtt + rtt/4
		}
	}
	return Policy{Grace: g.cfg.Grace, Retry: retry, Max: g.cfg.Max}
}
