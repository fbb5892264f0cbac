package turn

import (
	"net/netip"
	"sync"
	"time"
)

// sourceBudget caps how many answers per second one source address gets
// while it holds no allocation. A single answer to an unsigned request may
// be larger than the request (amplify.go: up to 2.6x, unavoidable for real
// clients), so over UDP, where the source can be forged, the budget is
// what bounds the traffic a victim can be sent through this server: with
// the default 50 answers per second, at most about 3.6 KB/s, whatever the
// attacker's rate. A client needs two or three answers to get an
// allocation, after which it is no longer counted.
type sourceBudget struct {
	limit int // answers per source per second; 0: unlimited

	mu     sync.Mutex
	window int64 // the second being counted
	counts map[netip.Addr]int
}

// maxBudgetSources bounds the table. Sources beyond it within one second
// (a flood with forged addresses) share one count, so the budget still
// holds for the set of them.
const maxBudgetSources = 1 << 16

func newSourceBudget(limit int) *sourceBudget {
	return &sourceBudget{limit: limit, counts: make(map[netip.Addr]int)}
}

// allow counts one answer to ip and reports whether it may be sent.
// Loopback sources are not counted: packets claiming them cannot arrive
// from another host.
func (b *sourceBudget) allow(ip netip.Addr, now time.Time) bool {
	if b.limit <= 0 || ip.IsLoopback() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if sec := now.Unix(); sec != b.window {
		clear(b.counts)
		b.window = sec
	}
	n, known := b.counts[ip]
	if !known && len(b.counts) >= maxBudgetSources {
		ip = netip.Addr{} // the shared count
		n = b.counts[ip]
	}
	if n >= b.limit {
		return false
	}
	b.counts[ip] = n + 1

	return true
}
