package ingest

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client IP for WHIP POSTs (each one
// costs a key lookup and a PeerConnection). The table is bounded: idle
// entries are swept when it fills, and if every slot is busy new IPs are
// refused rather than letting memory grow.
type ipLimiter struct {
	every time.Duration
	burst int
	max   int
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*ipBucket
}

type ipBucket struct {
	lim  *rate.Limiter
	last time.Time
}

const ipLimiterMax = 4096

// newIPLimiter returns nil (no limit) for perMinute <= 0.
func newIPLimiter(perMinute int) *ipLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &ipLimiter{every: time.Minute / time.Duration(perMinute), burst: max(2, perMinute/4),
		max: ipLimiterMax, now: time.Now, m: map[string]*ipBucket{}}
}

func (l *ipLimiter) allow(ip string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.m[ip]
	if b == nil {
		if len(l.m) >= l.max {
			// A bucket idle for longer than it takes to refill is full
			// again: forgetting it changes nothing.
			idle := l.every * time.Duration(l.burst)
			for k, x := range l.m {
				if now.Sub(x.last) > idle {
					delete(l.m, k)
				}
			}
			if len(l.m) >= l.max {
				return false
			}
		}
		b = &ipBucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.m[ip] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}
