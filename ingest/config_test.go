package ingest

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		key string
		mod func(*Config)
	}{
		{"ingest.reconnect_grace", func(c *Config) { c.ReconnectGrace = -time.Second }},
		{"ingest.max_streams", func(c *Config) { c.MaxStreams = 0 }},
		{"ingest.whip.path", func(c *Config) { c.WHIP.Path = "whip/" }},
		{"ingest.whip.max_offer_bytes", func(c *Config) { c.WHIP.MaxOfferBytes = 10 }},
		{"ingest.whip.requests_per_minute", func(c *Config) { c.WHIP.RequestsPerMinute = -1 }},
		{"ingest.whip.cors_origins", func(c *Config) { c.WHIP.CORSOrigins = []string{"example.com"} }},
		{"ingest.whip.connect_timeout", func(c *Config) { c.WHIP.ConnectTimeout = 0 }},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: got %v", tc.key, err)
		}
	}
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("New without Media accepted")
	}
}

// whipRate's bucket: a quarter of the minute's budget back to back, and
// never more than the budget in 60 s (TestWHIPRateMatchesRequestsPerMinute
// checks the second by replaying requests).
func TestWHIPRateParameters(t *testing.T) {
	for _, tc := range []struct {
		n, burst int
		every    time.Duration
	}{
		{30, 7, time.Minute / 24},
		{8, 2, time.Minute / 7},
		{1, 1, time.Minute},
		{600, 150, time.Minute / 451},
	} {
		every, burst := whipRate(tc.n)
		if every != tc.every || burst != tc.burst {
			t.Errorf("whipRate(%d) = %v, %d; want %v, %d", tc.n, every, burst, tc.every, tc.burst)
		}
	}
	l, err := newIPLimiter(0)
	if err != nil || l != nil {
		t.Fatalf("requests_per_minute 0: %v, %v; want no limiter", l, err)
	}
	if ok, _ := l.allow(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Fatal("disabled limiter refused")
	}
}
