// Package netpolicy decides which addresses a server may send to on a
// user's behalf: TURN peers, restream destinations. Special-purpose
// ranges (loopback, private, link-local, documentation...) are refused
// unless the operator allows them, so a user cannot make the server reach
// into its own network.
package netpolicy

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Denial reasons (TURN's parley_turn_peer_denials_total labels them).
const (
	DenyReasonSpecialPurpose = "special_purpose"
	DenyReasonOperator       = "operator_denied"
	DenyReasonInvalid        = "invalid_address"
)

// specialPurpose lists every range a public TURN relay must not reach by
// default: the relay sits inside the operator's network, so an open relay
// to these would let any credential holder probe loopback services, the
// LAN, cloud metadata (169.254.169.254) and other hosts that trust the
// server's address. Sources: IANA IPv4/IPv6 special-purpose registries.
var specialPurpose = mustPrefixes( //nolint:gochecknoglobals // read-only table
	// IPv4
	"0.0.0.0/8",       // "this network", includes 0.0.0.0
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link local, cloud metadata
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // TEST-NET-1
	"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes 255.255.255.255
	// IPv6
	"::/96", // unspecified, loopback and IPv4-compatible ::a.b.c.d
	// ::ffff:0:0/96 (IPv4-mapped) is not listed: Check unmaps it and judges
	// the IPv4 address inside by the IPv4 rows above.
	"64:ff9b::/96",   // NAT64 well-known prefix reaches IPv4 behind a translator
	"64:ff9b:1::/48", // local-use NAT64
	"100::/64",       // discard-only
	"2001::/32",      // Teredo tunnels embed IPv4 addresses
	"2001:2::/48",    // benchmarking
	"2001:10::/28",   // ORCHID
	"2001:20::/28",   // ORCHIDv2
	"2001:db8::/32",  // documentation
	"2002::/16",      // 6to4 embeds IPv4 addresses
	"3fff::/20",      // documentation
	"5f00::/16",      // SRv6 SIDs
	"fc00::/7",       // unique local
	"fe80::/10",      // link local
	"fec0::/10",      // site local (deprecated)
	"ff00::/8",       // multicast
)

// Policy decides which addresses may be sent to (a relay's peers, a
// restream's RTMP server).
// Order: the operator's deny list, then the operator's allow list, then the
// built-in special-purpose deny list; anything else (public unicast) is
// allowed.
type Policy struct {
	allow []netip.Prefix
	deny  []netip.Prefix
}

// New builds a policy from CIDR strings ("10.1.0.0/16", "::1/128";
// a bare address means a single host).
func New(allowed, denied []string) (*Policy, error) {
	allow, err := ParseCIDRs(allowed)
	if err != nil {
		return nil, fmt.Errorf("allowed: %w", err)
	}
	deny, err := ParseCIDRs(denied)
	if err != nil {
		return nil, fmt.Errorf("denied: %w", err)
	}

	return &Policy{allow: allow, deny: deny}, nil
}

// Check reports whether ip may be sent to and, if not, why.
//
// net.IP holds IPv4 addresses in the IPv4-mapped form, so a mapped address
// is judged by the IPv4 address inside it: ::ffff:127.0.0.1 is loopback and
// refused; ::ffff:8.8.8.8 is the same peer as 8.8.8.8. (pion already refuses
// mapped addresses on IPv6 allocations by its family check.)
func (p *Policy) Check(ip net.IP) (ok bool, reason string) {
	addr, valid := netip.AddrFromSlice(ip)
	if !valid {
		return false, DenyReasonInvalid
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		return false, DenyReasonInvalid
	}
	if containsAddr(p.deny, addr) {
		return false, DenyReasonOperator
	}
	if containsAddr(p.allow, addr) {
		return true, ""
	}
	if containsAddr(specialPurpose, addr) {
		return false, DenyReasonSpecialPurpose
	}
	if addr.Is6() && !inGlobalUnicast(addr) {
		// Anything outside 2000::/3 is unassigned or special.
		return false, DenyReasonSpecialPurpose
	}

	return true, ""
}

var globalUnicast = netip.MustParsePrefix("2000::/3") //nolint:gochecknoglobals // read-only

func inGlobalUnicast(a netip.Addr) bool { return globalUnicast.Contains(a) }

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}

	return false
}

// ParseCIDRs parses prefixes, unmapping IPv4-mapped ones so they match the
// unmapped addresses Check compares against.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("%q: zones are not allowed", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%q: zones are not allowed", s)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}

	return out, nil
}

func mustPrefixes(list ...string) []netip.Prefix {
	ps, err := ParseCIDRs(list)
	if err != nil {
		panic(err)
	}

	return ps
}
