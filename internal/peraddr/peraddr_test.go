package peraddr

import (
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := Key(netip.MustParseAddr(tc.in), 0).String(); got != tc.want {
			t.Errorf("Key(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := Key(netip.MustParseAddr("2001:db8::1"), 48).String(); got != "2001:db8::/48" {
		t.Errorf("/48 key: %s", got)
	}
}

// fakeClock is a manual clock for the Limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func addr4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}
func newTestLimiter(t *testing.T, cfg RateConfig) (*Limiter, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	cfg.Now = clk.now
	l, err := NewLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// In any window of length T an address gets at most Burst + T/Every.
func TestLimiterRate(t *testing.T) {
	l, clk := newTestLimiter(t, RateConfig{Every: 2 * time.Second, Burst: 3})
	a := netip.MustParseAddr("192.0.2.1")
	allowed := 0
	for range 601 { // one attempt every 100 ms for 60 s, both ends included
		if ok, _ := l.Allow(a); ok {
			allowed++
		}
		clk.add(100 * time.Millisecond)
	}
	if allowed != 3+30 {
		t.Fatalf("allowed %d in 60 s, want burst 3 + 30", allowed)
	}
	ok, retry := l.Allow(a)
	if ok || retry <= 0 || retry > 2*time.Second {
		t.Fatalf("after the budget: ok=%v retry=%v, want a refusal with 0 < retry <= 2s", ok, retry)
	}
}

// IPv6 addresses of one /64 share one bucket; another /64 has its own.
func TestLimiterIPv6Aggregation(t *testing.T) {
	l, _ := newTestLimiter(t, RateConfig{Every: time.Minute, Burst: 2})
	for i, s := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2"} {
		if ok, _ := l.Allow(netip.MustParseAddr(s)); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:0:1:ffff::3")); ok {
		t.Fatal("a third address in the same /64 got its own budget")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:0:2::1")); !ok {
		t.Fatal("another /64 was refused")
	}
}

// Filling the table with addresses whose buckets refilled must not lock
// newcomers out: the oldest is forgotten.
func TestLimiterFullTableOfIdleEntriesAdmitsNewcomers(t *testing.T) {
	l, clk := newTestLimiter(t, RateConfig{Every: time.Second, Burst: 2, MaxEntries: 64})
	for i := range 64 {
		if ok, _ := l.Allow(addr4(i)); !ok {
			t.Fatalf("filler %d refused", i)
		}
	}
	clk.add(2 * time.Second) // every filler's bucket is full again
	for i := range 64 {
		if ok, _ := l.Allow(addr4(1000 + i)); !ok {
			t.Fatalf("newcomer %d refused with a table of idle entries", i)
		}
	}
	if n := l.Len(); n != 64 {
		t.Fatalf("table holds %d entries, want the bound 64", n)
	}
}

// While every entry is still refilling (a flood from many addresses), a
// newcomer is neither refused outright nor given a fresh bucket by
// evicting an attacker: it shares the overflow budget.
func TestLimiterFullTableOfBusyEntriesUsesOverflow(t *testing.T) {
	l, _ := newTestLimiter(t, RateConfig{Every: time.Minute, Burst: 1, MaxEntries: 16, OverflowEvery: time.Minute, OverflowBurst: 5})
	for i := range 16 {
		l.Allow(addr4(i))
	}
	allowed := 0
	for i := range 50 {
		if ok, _ := l.Allow(addr4(100 + i)); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("newcomers allowed %d, want the overflow burst 5", allowed)
	}
	// The attackers kept their (empty) buckets: coming back does not
	// give them a fresh burst.
	if ok, _ := l.Allow(addr4(0)); ok {
		t.Fatal("an address in the table was given a fresh bucket")
	}
	if n := l.Len(); n != 16 {
		t.Fatalf("table holds %d entries, want 16", n)
	}
}

func TestCapPerAddressAndRelease(t *testing.T) {
	c, err := NewCap(CapConfig{PerAddr: 2})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	h1, err1 := c.Acquire(a, nil)
	h2, err2 := c.Acquire(a, nil)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := c.Acquire(a, nil); err != ErrCapReached {
		t.Fatalf("third hold: %v, want ErrCapReached", err)
	}
	if _, err := c.Acquire(netip.MustParseAddr("192.0.2.2"), nil); err != nil {
		t.Fatalf("another address: %v", err)
	}
	h1.Release()
	h1.Release() // twice is harmless
	if _, err := c.Acquire(a, nil); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	h2.Release()
	if got := c.Held(a); got != 1 {
		t.Fatalf("held %d, want 1", got)
	}
}

// A hold whose active function turns false stops counting without a
// Release.
func TestCapInactiveHoldsStopCounting(t *testing.T) {
	c, _ := NewCap(CapConfig{PerAddr: 2})
	a := netip.MustParseAddr("2001:db8::1")
	var joined atomic.Bool
	h, _ := c.Acquire(a, func() bool { return !joined.Load() })
	if _, err := c.Acquire(a, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Acquire(a, nil); err != ErrCapReached {
		t.Fatalf("over the cap: %v", err)
	}
	joined.Store(true)
	if _, err := c.Acquire(netip.MustParseAddr("2001:db8::2"), nil); err != nil { // same /64
		t.Fatalf("after the first hold became inactive: %v", err)
	}
	h.Release() // already ended: must not free another hold's slot
	if _, err := c.Acquire(a, nil); err != ErrCapReached {
		t.Fatalf("a stale Release freed a slot: %v", err)
	}
}

// A full table does not lock newcomers out: ended entries are forgotten,
// and when none has ended newcomers share the overflow budget.
func TestCapFullTable(t *testing.T) {
	c, _ := NewCap(CapConfig{PerAddr: 4, MaxEntries: 8, Overflow: 3})
	var done atomic.Bool
	for i := range 8 {
		if _, err := c.Acquire(addr4(i), func() bool { return !done.Load() }); err != nil {
			t.Fatal(err)
		}
	}
	var got []*Hold
	for i := range 10 {
		if h, err := c.Acquire(addr4(100+i), nil); err == nil {
			got = append(got, h)
		}
	}
	if len(got) != 3 {
		t.Fatalf("newcomers got %d holds with a busy table, want the overflow 3", len(got))
	}
	got[0].Release()
	if _, err := c.Acquire(addr4(200), nil); err != nil {
		t.Fatalf("overflow slot not freed by Release: %v", err)
	}
	done.Store(true) // every table entry's hold stopped counting
	for i := range 8 {
		if _, err := c.Acquire(addr4(300+i), nil); err != nil {
			t.Fatalf("newcomer %d refused although the table's holds ended: %v", i, err)
		}
	}
	if n := c.Len(); n > 8 {
		t.Fatalf("table holds %d entries, above the bound 8", n)
	}
}

func TestResolver(t *testing.T) {
	r, err := NewResolver([]string{"10.0.0.0/8", "192.0.2.9"}, "")
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := NewResolver([]string{"10.0.0.1"}, "Forwarded")
	if err != nil {
		t.Fatal(err)
	}
	none, _ := NewResolver(nil, "")
	cases := []struct {
		name   string
		res    *Resolver
		remote string
		header string
		value  []string
		want   string
	}{
		{"untrusted peer: header ignored", r, "203.0.113.5:1234", "X-Forwarded-For", []string{"198.51.100.1"}, "203.0.113.5"},
		{"no trusted proxies", none, "10.0.0.1:1", "X-Forwarded-For", []string{"198.51.100.1"}, "10.0.0.1"},
		{"trusted peer", r, "10.0.0.1:1", "X-Forwarded-For", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries to the left are ignored", r, "10.0.0.1:1", "X-Forwarded-For", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", r, "10.0.0.1:1", "X-Forwarded-For", []string{"198.51.100.1, 192.0.2.9", "10.2.3.4"}, "198.51.100.1"},
		{"garbage stops the walk", r, "10.0.0.1:1", "X-Forwarded-For", []string{"198.51.100.1, nonsense, 10.9.9.9"}, "10.9.9.9"},
		{"no header", r, "10.0.0.1:1", "", nil, "10.0.0.1"},
		{"ipv6 peer mapped", r, "[::ffff:10.0.0.1]:1", "X-Forwarded-For", []string{"2001:db8::5"}, "2001:db8::5"},
		{"forwarded header", fwd, "10.0.0.1:1", "Forwarded", []string{`for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https`}, "2001:db8:cafe::17"},
		{"forwarded ignores xff", fwd, "10.0.0.1:1", "X-Forwarded-For", []string{"198.51.100.1"}, "10.0.0.1"},
		{"forwarded unknown", fwd, "10.0.0.1:1", "Forwarded", []string{"for=unknown"}, "10.0.0.1"},
		{"xff resolver ignores forwarded", r, "10.0.0.1:1", "Forwarded", []string{"for=198.51.100.1"}, "10.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			for _, v := range tc.value {
				req.Header.Add(tc.header, v)
			}
			if got := tc.res.ClientAddr(req).String(); got != tc.want {
				t.Fatalf("client %s, want %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", ""} {
		if _, err := NewResolver([]string{bad}, ""); err == nil {
			t.Errorf("trusted proxy %q accepted", bad)
		}
	}
	if _, err := NewResolver(nil, "X-Real-IP"); err == nil {
		t.Error("unsupported header accepted")
	}
}

func TestFromRequest(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.1:5"
	if got := FromRequest(req).String(); got != "192.0.2.1" {
		t.Fatalf("without a recorded address: %s", got)
	}
	req = req.WithContext(WithClientAddr(req.Context(), netip.MustParseAddr("198.51.100.7")))
	if got := FromRequest(req).String(); got != "198.51.100.7" {
		t.Fatalf("with a recorded address: %s", got)
	}
}
