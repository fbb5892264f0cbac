package peraddr

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Forwarding headers a Resolver can read.
const (
	HeaderXForwardedFor = "x-forwarded-for"
	HeaderForwarded     = "forwarded" // RFC 7239, its for= parameters
)

// Resolver finds a request's client address. It believes a forwarding
// header only when the TCP peer is one of the trusted proxies, and then
// walks the header's list from the right (the entry the nearest proxy
// appended) past further trusted proxies: the first address that is not
// a trusted proxy is the client. Entries to the left of it were written
// by the client and are never believed.
//
// Only one header is read, the one the operator's proxy sets: a proxy
// that manages X-Forwarded-For passes a client's own Forwarded header
// through untouched, so believing both would let clients choose their
// address.
type Resolver struct {
	trusted []netip.Prefix
	header  string
}

// NewResolver parses trusted (CIDRs or single addresses) and header
// (HeaderXForwardedFor, HeaderForwarded, or "" for the default
// X-Forwarded-For). With no trusted proxies the peer address is always
// the client.
func NewResolver(trusted []string, header string) (*Resolver, error) {
	r := &Resolver{header: strings.ToLower(strings.TrimSpace(header))}
	if r.header == "" {
		r.header = HeaderXForwardedFor
	}
	if r.header != HeaderXForwardedFor && r.header != HeaderForwarded {
		return nil, fmt.Errorf("forwarding header %q: want %q or %q", header, HeaderXForwardedFor, HeaderForwarded)
	}
	for _, s := range trusted {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// ParsePrefix accepts "10.0.0.0/8", "fd00::/8" or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address of the client that sent req (see Resolver).
// The zero Addr means the peer is not an IP (a Unix socket).
func (r *Resolver) ClientAddr(req *http.Request) netip.Addr {
	peer := RemoteAddr(req.RemoteAddr)
	if len(r.trusted) == 0 || !peer.IsValid() || !r.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range req.Header.Values(r.header) {
		if r.header == HeaderForwarded {
			hops = append(hops, forwardedFor(v)...)
		} else {
			for h := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			// A hop we cannot read ("unknown", an obfuscated name,
			// garbage): nothing to its left can be trusted, and the
			// last proxy we know of stands for the client.
			return client
		}
		client = a
		if !r.isTrusted(a) {
			return a
		}
	}
	return client
}

// forwardedFor returns the for= values of one Forwarded header line, in
// order.
func forwardedFor(v string) []string {
	var out []string
	for elem := range strings.SplitSeq(v, ",") {
		found := ""
		for pair := range strings.SplitSeq(elem, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				found = strings.Trim(strings.TrimSpace(val), `"`)
			}
		}
		// An element without for= still is a hop; keep its place so the
		// walk stops there instead of skipping it.
		out = append(out, found)
	}
	return out
}

// parseHop reads "192.0.2.1", "192.0.2.1:4711", "2001:db8::1" or
// "[2001:db8::1]:4711".
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// RemoteAddr parses an http.Request.RemoteAddr ("ip:port", or a bare IP
// as some middleware leaves it); the zero Addr if it is neither.
func RemoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

type clientAddrKey struct{}

// WithClientAddr records the resolved client address in ctx, so handlers
// behind the edge that resolved it (WHIP, say) count the same address.
func WithClientAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, a)
}

// FromRequest is the client address recorded by WithClientAddr, or the
// request's peer address when none was recorded.
func FromRequest(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(clientAddrKey{}).(netip.Addr); ok {
		return a
	}
	return RemoteAddr(r.RemoteAddr)
}
