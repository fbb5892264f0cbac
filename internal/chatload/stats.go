package chatload

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Histogram records durations concurrently without locks: 25 us buckets
// up to 1 s and 10 ms buckets up to 60 s (longer values count in the last
// bucket). Quantiles are exact to the bucket width, which is far below
// the millisecond figures the load tool reports.
type Histogram struct {
	fine   [fineBuckets]atomic.Uint64
	coarse [coarseBuckets]atomic.Uint64
	count  atomic.Uint64
	sumNs  atomic.Uint64
	maxNs  atomic.Int64
}

const (
	fineWidth     = 25 * time.Microsecond
	fineLimit     = time.Second
	fineBuckets   = int(fineLimit / fineWidth)
	coarseWidth   = 10 * time.Millisecond
	coarseLimit   = 60 * time.Second
	coarseBuckets = int((coarseLimit - fineLimit) / coarseWidth)
)

// Record adds one duration; negative ones (clock steps) count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if d < fineLimit {
		h.fine[d/fineWidth].Add(1)
	} else {
		i := int((d - fineLimit) / coarseWidth)
		if i >= coarseBuckets {
			i = coarseBuckets - 1
		}
		h.coarse[i].Add(1)
	}
	h.count.Add(1)
	h.sumNs.Add(uint64(d))
	for {
		m := h.maxNs.Load()
		if int64(d) <= m || h.maxNs.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxNs.Load()) }

// Mean is the average recorded value (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumNs.Load() / n)
}

// Quantile returns the upper edge of the bucket holding the q-quantile
// (0 < q <= 1), capped at Max; 0 when empty. Reading while others record
// gives a value from some recent state, which is all a report needs.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.fine {
		seen += h.fine[i].Load()
		if seen >= rank {
			return min(time.Duration(i+1)*fineWidth, h.Max())
		}
	}
	for i := range h.coarse {
		seen += h.coarse[i].Load()
		if seen >= rank {
			return min(fineLimit+time.Duration(i+1)*coarseWidth, h.Max())
		}
	}
	return h.Max()
}

// Codes counts errors by code, safe for concurrent use.
type Codes struct {
	mu sync.Mutex
	m  map[string]uint64
}

// Add counts one occurrence of code.
func (c *Codes) Add(code string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[code]++
	c.mu.Unlock()
}

// Snapshot returns a copy of the counts.
func (c *Codes) Snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}
