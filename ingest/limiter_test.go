package ingest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
)

// noMedia satisfies Media for tests that never get past the WHIP
// handler's early checks.
type noMedia struct{}

func (noMedia) PublishLocal(string, sfu.LocalTrackOptions) (*sfu.LocalTrack, error) {
	return nil, fmt.Errorf("noMedia: not in this test")
}
func (noMedia) NewIngressPeerConnection() (*webrtc.PeerConnection, error) {
	return nil, fmt.Errorf("noMedia: not in this test")
}

func newLimiterService(t *testing.T, perMinute int) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.WHIP.RequestsPerMinute = perMinute
	svc, err := New(cfg, Deps{Media: noMedia{}, Keys: fakeKeys{}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// whipPostFrom sends a WHIP POST from remote without a Content-Type: the
// rate limit is checked first, then the request is answered 415 at once.
func whipPostFrom(svc *Service, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/whip", strings.NewReader("v=0\r\n"))
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	svc.WHIPHandler().ServeHTTP(rec, req)
	return rec
}

// Finding #17.5: thousands of addresses must not lock a new address out
// of WHIP, neither right after they filled the table nor a few seconds
// later, once their buckets refilled.
func TestWHIPLimiterTableCannotBeFilled(t *testing.T) {
	svc := newLimiterService(t, 30)
	clk := time.Unix(1_000_000, 0)
	setLimiterClock(svc, func() time.Time { return clk })
	filler := func(i int) string { return fmt.Sprintf("10.%d.%d.%d:5000", i>>16&255, i>>8&255, i&255) }
	for i := range 4096 {
		whipPostFrom(svc, filler(i))
	}
	for i := range 3 {
		if rec := whipPostFrom(svc, fmt.Sprintf("192.0.2.%d:5000", i+1)); rec.Code == http.StatusTooManyRequests {
			t.Fatalf("new address %d refused right after 4096 others made one request each", i)
		}
	}
	for i := 4096; i < 6000; i++ {
		whipPostFrom(svc, filler(i))
	}
	// Each filler made one request: its bucket is full again within
	// seconds, and forgetting it loses nothing.
	clk = clk.Add(5 * time.Second)
	if rec := whipPostFrom(svc, "198.51.100.1:5000"); rec.Code == http.StatusTooManyRequests {
		t.Fatalf("a new address was refused 5 s after 6000 others made one request each: %d %s", rec.Code, rec.Body)
	}
	// An IPv6 flood from one /64 counts as one address.
	refused := 0
	for i := range 100 {
		if whipPostFrom(svc, fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1)).Code == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < 90 {
		t.Fatalf("only %d of 100 POSTs from one IPv6 /64 were refused: its addresses got budgets of their own", refused)
	}
}

// Finding #17.5: ingest.whip.requests_per_minute promises at most that
// many POSTs per minute from one address; any 60 s window must hold at
// most that many.
func TestWHIPRateMatchesRequestsPerMinute(t *testing.T) {
	for _, perMinute := range []int{30, 8, 1} {
		t.Run(fmt.Sprint(perMinute), func(t *testing.T) {
			svc := newLimiterService(t, perMinute)
			clk := time.Unix(1_000_000, 0)
			setLimiterClock(svc, func() time.Time { return clk })
			var times []time.Time
			for range 3000 { // one attempt every 100 ms for 5 minutes
				if whipPostFrom(svc, "192.0.2.1:5000").Code != http.StatusTooManyRequests {
					times = append(times, clk)
				}
				clk = clk.Add(100 * time.Millisecond)
			}
			// The most allowed in any window of 60 s.
			most := 0
			for i := range times {
				n := 0
				for j := i; j < len(times) && times[j].Sub(times[i]) < time.Minute; j++ {
					n++
				}
				most = max(most, n)
			}
			if most > perMinute {
				t.Fatalf("%d POSTs allowed within 60 s, requests_per_minute is %d", most, perMinute)
			}
			// And the limit is not much stricter than promised: the
			// burst comes out of the minute's budget, so the sustained
			// rate is (n - burst + 1) per minute, at least 3/4 of n.
			if len(times) < 5*perMinute*3/4 {
				t.Fatalf("only %d POSTs allowed in 5 minutes at %d per minute", len(times), perMinute)
			}
		})
	}
}

// A refusal says when to retry, from the budget rather than a constant,
// and a POST at that time is served.
func TestWHIPRateLimitRetryAfter(t *testing.T) {
	svc := newLimiterService(t, 2)
	clk := time.Unix(1_000_000, 0)
	setLimiterClock(svc, func() time.Time { return clk })
	var rec *httptest.ResponseRecorder
	for range 5 {
		if rec = whipPostFrom(svc, "192.0.2.1:5000"); rec.Code == http.StatusTooManyRequests {
			break
		}
	}
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("5 POSTs at 2 per minute: last %d", rec.Code)
	}
	secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Fatalf("Retry-After %q, want whole seconds in 1..60", rec.Header().Get("Retry-After"))
	}
	clk = clk.Add(time.Duration(secs-1) * time.Second)
	if whipPostFrom(svc, "192.0.2.1:5000").Code != http.StatusTooManyRequests {
		t.Fatalf("served a second before Retry-After (%d s)", secs)
	}
	clk = clk.Add(time.Second)
	if rec := whipPostFrom(svc, "192.0.2.1:5000"); rec.Code == http.StatusTooManyRequests {
		t.Fatalf("refused at Retry-After (%d s)", secs)
	}
}

// The HTTP edge in front of WHIP (signaling) bounds request bodies at
// what the handler declares; it must declare max_offer_bytes, or offers
// above the edge's 16 KiB default would be cut.
func TestWHIPHandlerDeclaresBodyLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WHIP.MaxOfferBytes = 200 << 10
	svc, err := New(cfg, Deps{Media: noMedia{}, Keys: fakeKeys{}})
	if err != nil {
		t.Fatal(err)
	}
	bl, ok := svc.WHIPHandler().(interface{ MaxBodyBytes() int64 })
	if !ok || bl.MaxBodyBytes() != 200<<10 {
		t.Fatalf("WHIP handler declares no body limit or the wrong one (%v)", ok)
	}
}
