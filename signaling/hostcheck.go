package signaling

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// DNS rebinding: a page on evil.example can make its own name resolve to
// this server (127.0.0.1 on a developer's machine), and the browser then
// treats the server as evil.example: Origin and Host both say
// evil.example, so the same-origin check passes and the page could mint
// guest tokens and join calls. The name in Host is the tell. In dev mode
// the guest-token endpoint and the WebSocket therefore accept only Host
// names that cannot be rebound: IP literals (no DNS involved), localhost
// and *.localhost (browsers resolve those to loopback themselves), this
// machine's host name, and signaling.dev_allowed_hosts. Outside dev mode
// tokens come from the operator, and a rebound page has none to use.

// devHosts is the set of host names dev mode accepts, lower case.
type devHosts map[string]bool

// newDevHosts collects this machine's names and the configured ones.
func newDevHosts(extra []string) devHosts {
	h := devHosts{"localhost": true}
	if name, err := os.Hostname(); err == nil {
		if n := normalizeHostName(name); n != "" {
			h[n] = true
			// The short name, if the kernel's is a full one.
			short, _, _ := strings.Cut(n, ".")
			h[short] = true
		}
	}
	for _, e := range extra {
		if n := normalizeHostName(e); n != "" {
			h[n] = true
		}
	}
	return h
}

// normalizeHostName lower-cases a bare host name and drops a trailing
// dot; "" if it is not one (a port, scheme, path or wildcard).
func normalizeHostName(s string) string {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if s == "" || len(s) > 253 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return ""
		}
	}
	return s
}

// allows reports whether a request's Host header names this server in a
// way DNS rebinding cannot fake.
func (d devHosts) allows(hostHeader string) bool {
	host := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	n := normalizeHostName(host)
	return n != "" && (d[n] || strings.HasSuffix(n, ".localhost"))
}

// devHostAllowed answers 403 and returns false for a dev-mode request
// whose Host could be a rebound name. Outside dev mode it always passes.
func (s *Server) devHostAllowed(w http.ResponseWriter, r *http.Request) bool {
	if !s.cfg.DevMode || s.edge.devHosts.allows(r.Host) {
		return true
	}
	s.edge.refuse("dev_host")
	s.log.Info("dev mode: request for an unknown host name refused", "host", r.Host, "remote", r.RemoteAddr)
	writeJSONError(w, http.StatusForbidden, "forbidden",
		"dev mode accepts only loopback, IP addresses and this machine's names as Host; add this name to signaling.dev_allowed_hosts")
	return false
}
