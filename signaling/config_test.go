package signaling

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"empty listen", func(c *Config) { c.Listen = "" }, "signaling.listen"},
		{"only cert", func(c *Config) { c.TLSCert = "c.pem" }, "signaling.tls_cert"},
		{"wildcard origin", func(c *Config) { c.AllowedOrigins = []string{"*"} }, "signaling.allowed_origins"},
		{"origin with path", func(c *Config) { c.AllowedOrigins = []string{"https://a.example/x"} }, "signaling.allowed_origins"},
		{"good origin", func(c *Config) { c.AllowedOrigins = []string{"https://a.example:8443"} }, ""},
		{"short secret", func(c *Config) { c.APIKeys = map[string]string{"k": "short"} }, "signaling.api_keys"},
		{"tiny frames", func(c *Config) { c.MaxMessageBytes = 10 }, "signaling.max_message_bytes"},
		{"no rate", func(c *Config) { c.RatePerSecond = 0 }, "signaling.rate_per_second"},
		{"zero ping", func(c *Config) { c.PingInterval = 0 }, "signaling.ping_interval"},
		{"timeout below interval", func(c *Config) { c.PingTimeout = c.PingInterval }, "signaling.ping_timeout"},
		{"negative participants", func(c *Config) { c.MaxParticipantsPerRoom = -1 }, "signaling.max_participants_per_room"},
		{"no lobby timeout", func(c *Config) { c.LobbyTimeout = 0 }, "signaling.lobby_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("err = %v, want mention of %s", err, tc.wantKey)
			}
			if strings.Contains(err.Error(), "short\"") {
				t.Fatal("error leaks a secret")
			}
		})
	}
}
