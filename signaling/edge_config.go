package signaling

import (
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/peraddr"
)

// validateEdge checks the HTTP edge settings (body_timeout,
// trusted_proxies, forwarded_header, max_unjoined_per_address,
// dev_allowed_hosts).
func (c Config) validateEdge() error {
	if c.BodyTimeout < 100*time.Millisecond || c.BodyTimeout > 10*time.Minute {
		return fmt.Errorf("signaling.body_timeout: must be between 100ms and 10m, got %s", c.BodyTimeout)
	}
	for _, p := range c.TrustedProxies {
		if _, err := peraddr.ParsePrefix(p); err != nil {
			return fmt.Errorf("signaling.trusted_proxies: %w", err)
		}
	}
	switch strings.ToLower(c.ForwardedHeader) {
	case peraddr.HeaderXForwardedFor, peraddr.HeaderForwarded:
	default:
		return fmt.Errorf("signaling.forwarded_header: must be %s or %s, got %q", peraddr.HeaderXForwardedFor, peraddr.HeaderForwarded, c.ForwardedHeader)
	}
	if c.MaxUnjoinedPerAddress < 1 {
		return fmt.Errorf("signaling.max_unjoined_per_address: must be at least 1, got %d", c.MaxUnjoinedPerAddress)
	}
	for _, h := range c.DevAllowedHosts {
		if normalizeHostName(h) == "" {
			return fmt.Errorf("signaling.dev_allowed_hosts: %q: want a host name such as devbox.lan (no scheme, port or wildcard)", h)
		}
	}
	return nil
}
