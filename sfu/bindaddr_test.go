package sfu

import (
	"net"
	"testing"
)

// bind_address is now a filter on the per-address sockets, so the
// unspecified addresses, which used to mean one wildcard socket, must
// keep meaning "every address" (of their family).
func TestBindAddressFilter(t *testing.T) {
	cases := []struct {
		bind, ip string
		want     bool
	}{
		{"", "192.0.2.7", true},
		{"", "2001:db8::7", true},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.8", false},
		{"0.0.0.0", "192.0.2.8", true},
		{"0.0.0.0", "2001:db8::7", false},
		{"::", "192.0.2.8", true},
		{"::", "2001:db8::7", true},
		{"2001:db8::7", "2001:db8::7", true},
		{"2001:db8::7", "192.0.2.7", false},
	}
	for _, c := range cases {
		cfg := Config{BindAddress: c.bind}
		if got := cfg.ipAllowed(nil, net.ParseIP(c.ip)); got != c.want {
			t.Errorf("bind_address %q, local %s: allowed %v, want %v", c.bind, c.ip, got, c.want)
		}
	}
}
