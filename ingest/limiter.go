package ingest

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/parleyhq/parley/internal/peraddr"
)

// whipOverflowAddrs is how many addresses' worth of budget newcomers
// share while the limiter's table is full of addresses that are all
// still refilling (a flood from more than peraddr.DefaultMaxEntries
// addresses): enough for real publishers to get through a burst of
// attackers draining it.
const whipOverflowAddrs = 16

// ipLimiter bounds WHIP POSTs per client address (each costs a key
// lookup, and with a valid key a PeerConnection). It is a
// peraddr.Limiter: IPv6 counted per /64, a bounded table that forgets
// refilled addresses first, and an overflow budget for newcomers when no
// address can be forgotten.
type ipLimiter struct {
	lim *peraddr.Limiter
	now func() time.Time // the limiter's clock; tests replace it
}

// whipRate turns requests_per_minute (n) into a token bucket that never
// lets more than n POSTs through in any 60 s: a burst of a quarter of n
// (at least 1) and one more every 60s/(n-burst+1). In a window of length W a
// bucket admits at most burst + ceil(W/every) - 1, which is n for W = 60 s.
func whipRate(n int) (every time.Duration, burst int) {
	burst = max(1, n/4)
	return time.Minute / time.Duration(n-burst+1), burst
}

// newIPLimiter returns nil (no limit) for perMinute <= 0.
func newIPLimiter(perMinute int) (*ipLimiter, error) {
	if perMinute <= 0 {
		return nil, nil
	}
	every, burst := whipRate(perMinute)
	l := &ipLimiter{now: time.Now}
	lim, err := peraddr.NewLimiter(peraddr.RateConfig{
		Every: every, Burst: burst,
		OverflowEvery: every / whipOverflowAddrs, OverflowBurst: burst * whipOverflowAddrs,
		Now: func() time.Time { return l.now() },
	})
	if err != nil {
		return nil, fmt.Errorf("ingest.whip.requests_per_minute: %w", err)
	}
	l.lim = lim
	return l, nil
}

// allow takes one POST from a's budget; when refused, retry says when
// the next one will be allowed.
func (l *ipLimiter) allow(a netip.Addr) (ok bool, retry time.Duration) {
	if l == nil {
		return true, 0
	}
	return l.lim.Allow(a)
}
