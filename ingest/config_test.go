package ingest

import (
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

func TestIPLimiterBounded(t *testing.T) {
	l := newIPLimiter(60) // 1/s, burst 15
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	l.max = 3
	for i := range 15 {
		if !l.allow("a") {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if l.allow("a") {
		t.Fatal("request over the burst allowed")
	}
	if !l.allow("b") || !l.allow("c") {
		t.Fatal("other IPs limited")
	}
	if l.allow("d") {
		t.Fatal("table over its bound accepted a new IP while all buckets are busy")
	}
	now = now.Add(time.Minute) // every bucket refilled: idle ones can go
	if !l.allow("d") {
		t.Fatal("new IP refused after idle buckets expired")
	}
	if len(l.m) > 3 {
		t.Fatalf("table holds %d entries, bound 3", len(l.m))
	}
	if newIPLimiter(0).allow("x") != true {
		t.Fatal("disabled limiter refused")
	}
}
