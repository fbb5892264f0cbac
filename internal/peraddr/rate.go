package peraddr

import (
	"container/list"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// RateConfig configures a Limiter.
type RateConfig struct {
	// Every is the time to earn one request; Burst is how many may be
	// made back to back by an address that has been quiet. In any window
	// of length T an address gets at most Burst + T/Every requests.
	Every time.Duration
	Burst int
	// MaxEntries bounds the addresses tracked (0: DefaultMaxEntries).
	MaxEntries int
	// IPv6Bits is the IPv6 prefix counted as one address (0: 64).
	IPv6Bits int
	// OverflowEvery and OverflowBurst form the one bucket shared by
	// newcomers while every tracked address is still refilling (a flood
	// from more than MaxEntries addresses). Zero: the same as one address.
	OverflowEvery time.Duration
	OverflowBurst int
	// Now is the clock (nil: time.Now); tests pass a fake one.
	Now func() time.Time
}

// Limiter is a token bucket per address key in a bounded table.
//
// When the table is full, the least recently used entry is forgotten if
// its bucket has refilled (forgetting a full bucket changes nothing).
// If even that entry is still refilling, the newcomer is charged against
// the overflow bucket instead of getting an entry of its own: evicting a
// refilling entry would hand its address a fresh burst, which is how an
// attacker with many addresses would defeat the limit.
type Limiter struct {
	cfg RateConfig

	mu       sync.Mutex
	entries  map[netip.Prefix]*list.Element // of *rateEntry
	lru      list.List                      // front: most recently used
	overflow bucket
}

type rateEntry struct {
	key netip.Prefix
	b   bucket
}

// bucket is a token bucket kept as the time it will be full again (the
// "theoretical arrival time" of the generic cell rate algorithm): one
// timestamp, exact integer arithmetic, no refill bookkeeping.
type bucket struct {
	full time.Time // zero or past: the bucket is full
}

// idle reports whether the bucket is full at now: forgetting it then
// changes nothing.
func (b *bucket) idle(now time.Time) bool { return !b.full.After(now) }

// take removes one token if there is one. Otherwise it reports how long
// until there will be.
func (b *bucket) take(now time.Time, every time.Duration, burst int) (bool, time.Duration) {
	full := b.full
	if full.Before(now) {
		full = now
	}
	next := full.Add(every)
	// Taking is allowed while the bucket stays within burst tokens of
	// debt: next may be at most burst periods ahead of now.
	if wait := next.Sub(now) - time.Duration(burst)*every; wait > 0 {
		return false, wait
	}
	b.full = next
	return true, 0
}

// NewLimiter checks cfg and builds a Limiter.
func NewLimiter(cfg RateConfig) (*Limiter, error) {
	if cfg.Every <= 0 || cfg.Burst < 1 {
		return nil, fmt.Errorf("peraddr: rate needs Every > 0 and Burst >= 1, got %v and %d", cfg.Every, cfg.Burst)
	}
	if cfg.MaxEntries < 0 || cfg.OverflowBurst < 0 || cfg.OverflowEvery < 0 {
		return nil, errors.New("peraddr: MaxEntries, OverflowEvery and OverflowBurst must not be negative")
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.OverflowEvery == 0 {
		cfg.OverflowEvery = cfg.Every
	}
	if cfg.OverflowBurst == 0 {
		cfg.OverflowBurst = cfg.Burst
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, entries: make(map[netip.Prefix]*list.Element)}, nil
}

// Allow takes one request from a's budget. When it is refused, retry is
// how long until the budget has room again (for a Retry-After header).
func (l *Limiter) Allow(a netip.Addr) (ok bool, retry time.Duration) {
	key := Key(a, l.cfg.IPv6Bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	if el, found := l.entries[key]; found {
		l.lru.MoveToFront(el)
		return el.Value.(*rateEntry).b.take(now, l.cfg.Every, l.cfg.Burst)
	}
	var e *rateEntry
	if l.lru.Len() >= l.cfg.MaxEntries {
		oldest := l.lru.Back()
		old := oldest.Value.(*rateEntry)
		if !old.b.idle(now) {
			return l.overflow.take(now, l.cfg.OverflowEvery, l.cfg.OverflowBurst)
		}
		// Reuse the forgotten entry's memory for the newcomer.
		delete(l.entries, old.key)
		l.lru.Remove(oldest)
		e = old
		*e = rateEntry{}
	} else {
		e = &rateEntry{}
	}
	e.key = key
	l.entries[key] = l.lru.PushFront(e)
	return e.b.take(now, l.cfg.Every, l.cfg.Burst)
}

// Len is the number of addresses tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
