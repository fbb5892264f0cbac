package turn

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v4"
)

func TestSourceBudget(t *testing.T) {
	b := newSourceBudget(3)
	now := time.Unix(1000, 0)
	victim := netip.MustParseAddr("198.51.100.7")
	for i := range 3 {
		if !b.allow(victim, now) {
			t.Fatalf("answer %d refused within the budget", i)
		}
	}
	if b.allow(victim, now.Add(999*time.Millisecond)) {
		t.Fatal("fourth answer in one second allowed")
	}
	if !b.allow(netip.MustParseAddr("198.51.100.8"), now) {
		t.Fatal("another source shares the victim's budget")
	}
	if !b.allow(victim, now.Add(time.Second)) {
		t.Fatal("budget not renewed in the next second")
	}
	for range 10 {
		if !b.allow(netip.MustParseAddr("::1"), now) || !b.allow(netip.MustParseAddr("127.0.0.1"), now) {
			t.Fatal("loopback sources are limited")
		}
	}
	// A flood of forged sources fills the table; the ones beyond it share
	// one budget instead of getting one each.
	later := now.Add(2 * time.Second)
	for i := range maxBudgetSources {
		b.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), later)
	}
	allowed := 0
	for i := range 100 {
		if b.allow(netip.AddrFrom4([4]byte{11, 0, 0, byte(i)}), later) {
			allowed++
		}
	}
	if allowed != 3 || len(b.counts) > maxBudgetSources+1 {
		t.Fatalf("%d answers to sources beyond the table (want 3), table %d", allowed, len(b.counts))
	}
	if !newSourceBudget(0).allow(victim, now) {
		t.Fatal("0 should mean unlimited")
	}
}

// TestUnallocatedAnswersLimited sends bursts of Binding requests over
// UDP from a non-loopback address: a source without an allocation gets
// at most unallocated_answer_rate answers per second, one with an
// allocation is not limited.
func TestUnallocatedAnswersLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newVNetWorld(t)
		cfg := testConfig()
		cfg.UnallocatedAnswerRate = 10
		ts := w.startServer(t, cfg)
		conn, err := w.client.Dial("udp", "1.2.3.4:3478")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		burst := func() int {
			for range 30 {
				req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
				if _, err := conn.Write(req.Raw); err != nil {
					t.Fatal(err)
				}
			}
			answers := 0
			buf := make([]byte, 1500)
			for range 30 {
				_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := conn.Read(buf); err != nil {
					break
				}
				answers++
			}

			return answers
		}
		if got := burst(); got != 10 {
			t.Fatalf("%d answers to a burst of 30 from a stranger, want 10", got)
		}
		if n := counter(ts.metrics.answersRateLimited); n != 20 {
			t.Fatalf("%v answers counted as limited, want 20", n)
		}
		time.Sleep(time.Second)
		u, p := RESTCredentials(testSecret, "member", time.Hour, time.Now())
		rc := &rawClient{t: t, conn: conn, datagram: true, user: u, password: p}
		if _, code := rc.do(stun.MethodAllocate, requestedTransport(17)); code != 0 {
			t.Fatalf("allocate: %d", code)
		}
		if got := burst(); got != 30 {
			t.Fatalf("%d answers to a burst of 30 from a client with an allocation, want 30", got)
		}
	})
}
