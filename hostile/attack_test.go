package hostile

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// Attacks come from other loopback addresses (127.0.0.2, 127.0.0.3, ...)
// than the legitimate client (127.0.0.1), as they would from another
// host: per-address limits must stop the attacker without touching anyone
// else. Linux routes all of 127/8 to the loopback interface, so no setup
// is needed.

// rssBudget is how much the server's resident memory may grow during
// one attack. Each attack here is bounded to a few hundred connections;
// an unbounded table or buffer would grow well past this.
const rssBudget = 64 << 20

// dialFrom opens a TCP connection from the loopback address src.
func dialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// memWatch keeps the peak of the server's RSS from its creation until
// check: a sampler reads it every 50 ms, so a short spike between the
// test's own samples is seen too.
type memWatch struct {
	p    *testkit.Parley
	base int64
	peak atomic.Int64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func watchMem(t *testing.T, p *testkit.Parley) *memWatch {
	t.Helper()
	base, err := p.RSS()
	if err != nil {
		t.Fatal(err)
	}
	m := &memWatch{p: p, base: base, stop: make(chan struct{}), done: make(chan struct{})}
	m.peak.Store(base)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(m.halt)
	return m
}

func (m *memWatch) halt() {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
}

func (m *memWatch) sample() {
	if rss, err := m.p.RSS(); err == nil && rss > m.peak.Load() {
		m.peak.Store(rss)
	}
}

// check fails the test if the peak grew beyond rssBudget.
func (m *memWatch) check(t *testing.T) {
	t.Helper()
	m.checkWithin(t, rssBudget)
}

// checkWithin stops sampling and fails the test if the peak grew beyond
// budget bytes.
func (m *memWatch) checkWithin(t *testing.T, budget int64) {
	t.Helper()
	m.halt()
	m.sample()
	grew := m.peak.Load() - m.base
	t.Logf("RSS %.1f MiB before the attack, peak %.1f MiB (+%.1f)", mib(m.base), mib(m.peak.Load()), mib(grew))
	if grew > budget {
		t.Fatalf("RSS grew by %.1f MiB during the attack, budget %.0f MiB", mib(grew), mib(budget))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
