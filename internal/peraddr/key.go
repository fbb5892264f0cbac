package peraddr

import "net/netip"

// Defaults for Config fields left zero.
const (
	DefaultIPv6Bits   = 64
	DefaultMaxEntries = 4096
)

// Key returns the unit an address is counted in: a /32 for IPv4 (and
// IPv4-mapped IPv6), the enclosing /ipv6Bits prefix for IPv6 (0 means
// DefaultIPv6Bits). Zones are dropped: fe80::1%eth0 and fe80::1%eth1 are
// one key. The zero Addr (a peer that is not an IP, such as a Unix
// socket) maps to the zero Prefix, so all such peers share one key.
func Key(a netip.Addr, ipv6Bits int) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	if ipv6Bits <= 0 || ipv6Bits > 128 {
		ipv6Bits = DefaultIPv6Bits
	}
	p, _ := a.Prefix(ipv6Bits) // cannot fail: a is IPv6, bits in range
	return p
}
