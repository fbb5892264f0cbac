package peraddr

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// CapConfig configures a Cap.
type CapConfig struct {
	// PerAddr is how many holds one address key may have at once.
	PerAddr int
	// MaxEntries bounds the addresses tracked (0: DefaultMaxEntries).
	MaxEntries int
	// IPv6Bits is the IPv6 prefix counted as one address (0: 64).
	IPv6Bits int
	// Overflow is how many holds, in total, the newcomers that find the
	// table full may have at once (0: PerAddr, as if they were one more
	// address).
	Overflow int
}

// Cap counts what each address key holds at once (connections, sessions)
// and refuses a hold beyond CapConfig.PerAddr.
//
// A hold ends when it is released, or earlier when its active function
// says it no longer counts: a WebSocket that has authenticated, say,
// stops counting against the cap for unauthenticated sockets, without
// the code that authenticates it having to know about the cap. Ended
// holds are found lazily: an address at its cap is re-checked before a
// refusal, and a full table is probed a few entries at a time, so each
// Acquire costs O(PerAddr) whatever the table holds.
type Cap struct {
	cfg CapConfig

	mu       sync.Mutex
	entries  map[netip.Prefix]*capEntry
	overflow capEntry
}

type capEntry struct {
	holds []*Hold
}

// Hold is one unit a client holds; Release it when it ends.
type Hold struct {
	c      *Cap
	key    netip.Prefix
	entry  *capEntry // the table entry, or &c.overflow
	active func() bool
	ended  bool // guarded by c.mu
}

// ErrCapReached is returned when an address (or, in overflow, the
// newcomers together) already holds as much as the cap allows.
var ErrCapReached = errors.New("peraddr: per-address cap reached")

// sweepProbe is how many other table entries one Acquire re-checks when
// the table is full.
const sweepProbe = 8

// NewCap checks cfg and builds a Cap.
func NewCap(cfg CapConfig) (*Cap, error) {
	if cfg.PerAddr < 1 {
		return nil, fmt.Errorf("peraddr: PerAddr must be at least 1, got %d", cfg.PerAddr)
	}
	if cfg.MaxEntries < 0 || cfg.Overflow < 0 {
		return nil, errors.New("peraddr: MaxEntries and Overflow must not be negative")
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Overflow == 0 {
		cfg.Overflow = cfg.PerAddr
	}
	return &Cap{cfg: cfg, entries: make(map[netip.Prefix]*capEntry)}, nil
}

// Acquire takes one hold for a, or returns ErrCapReached. active, if not
// nil, is asked (under the Cap's lock: it must be cheap and must not call
// the Cap) whether the hold still counts; once it says false the hold
// never counts again and Release becomes a no-op.
func (c *Cap) Acquire(a netip.Addr, active func() bool) (*Hold, error) {
	key := Key(a, c.cfg.IPv6Bits)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	limit := c.cfg.PerAddr
	if e == nil {
		if len(c.entries) >= c.cfg.MaxEntries {
			c.sweepLocked()
		}
		if len(c.entries) >= c.cfg.MaxEntries {
			e, limit = &c.overflow, c.cfg.Overflow
		} else {
			e = &capEntry{}
			c.entries[key] = e
		}
	}
	if len(e.holds) >= limit {
		c.pruneLocked(e)
	}
	if len(e.holds) >= limit {
		return nil, ErrCapReached
	}
	h := &Hold{c: c, key: key, entry: e, active: active}
	e.holds = append(e.holds, h)
	return h, nil
}

// Release ends the hold; calling it again does nothing.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.ended {
		return
	}
	h.ended = true
	e := h.entry
	if i := slices.Index(e.holds, h); i >= 0 {
		e.holds = slices.Delete(e.holds, i, i+1)
	}
	c.dropIfEmptyLocked(h.key, e)
}

// pruneLocked ends the holds of e that no longer count.
func (c *Cap) pruneLocked(e *capEntry) {
	e.holds = slices.DeleteFunc(e.holds, func(h *Hold) bool {
		if h.active != nil && !h.active() {
			h.ended = true
			return true
		}
		return false
	})
}

// sweepLocked re-checks up to sweepProbe entries (Go's map iteration
// starts at a random place) and forgets those left empty.
func (c *Cap) sweepLocked() {
	n := 0
	for key, e := range c.entries {
		if n == sweepProbe {
			return
		}
		n++
		c.pruneLocked(e)
		c.dropIfEmptyLocked(key, e)
	}
}

func (c *Cap) dropIfEmptyLocked(key netip.Prefix, e *capEntry) {
	if len(e.holds) == 0 && e != &c.overflow && c.entries[key] == e {
		delete(c.entries, key)
	}
}

// Held is how many holds a's key has now, counting only those still
// active.
func (c *Cap) Held(a netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := Key(a, c.cfg.IPv6Bits)
	e := c.entries[key]
	if e == nil {
		return 0
	}
	c.pruneLocked(e)
	n := len(e.holds)
	c.dropIfEmptyLocked(key, e)
	return n
}

// Len is the number of addresses tracked (the overflow pool not counted).
func (c *Cap) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
