package turn

import (
	"net"
	"net/netip"
	"testing"
)

// deniedPeers are addresses from every special-purpose range the relay
// must refuse by default. Each IPv4 row is also tried in IPv4-mapped form.
var deniedPeers = []string{
	"127.0.0.1", "127.255.255.254", // loopback
	"0.0.0.0", "0.1.2.3", // unspecified, "this network"
	"10.0.0.1", "10.255.255.255", // private
	"172.16.0.1", "172.31.255.254",
	"192.168.0.1", "192.168.255.255",
	"100.64.0.1", "100.127.255.254", // CGNAT
	"169.254.0.1", "169.254.169.254", // link local, cloud metadata
	"224.0.0.1", "239.255.255.250", // multicast (SSDP)
	"255.255.255.255",                            // broadcast
	"192.0.2.1", "198.51.100.7", "203.0.113.200", // documentation
	"192.0.0.8",                  // IETF protocol assignments
	"198.18.0.1", "198.19.255.1", // benchmarking
	"240.0.0.1", "250.1.2.3", // reserved
	"::1", "::", // loopback, unspecified
	"fc00::1", "fd12:3456:789a::1", // unique local
	"fe80::1",             // link local
	"ff02::1", "ff0e::fb", // multicast
	"64:ff9b::808:808",      // NAT64 of a public address
	"2002:c000:0201::1",     // 6to4
	"::7f00:1", "::808:808", // IPv4-compatible ::a.b.c.d
	"2001:db8::1",            // documentation
	"2001:0:4136:e378::1",    // Teredo
	"3fff::1",                // documentation (2024)
	"fec0::1",                // site local
	"::ffff:127.0.0.1",       // mapped loopback written out
	"::ffff:169.254.169.254", // mapped metadata
	"::ffff:10.1.2.3",        // mapped private
	"100::1",                 // discard-only
	"4000::1",                // outside 2000::/3
}

func TestPeerPolicyDeniesSpecialPurpose(t *testing.T) {
	p, err := NewPeerPolicy(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range deniedPeers {
		ip := net.ParseIP(s)
		if ip == nil {
			t.Fatalf("bad test address %q", s)
		}
		if ok, reason := p.Check(ip); ok || reason != DenyReasonSpecialPurpose {
			t.Errorf("Check(%s) = %v, %q; want denied as %s", s, ok, reason, DenyReasonSpecialPurpose)
		}
		if v4 := ip.To4(); v4 != nil {
			// Both byte forms pion can hand us: 4-byte and 16-byte mapped.
			if ok, _ := p.Check(v4); ok {
				t.Errorf("Check(4-byte %s) allowed", s)
			}
			mapped := netip.AddrFrom16(netip.MustParseAddr(s).As16()).AsSlice()
			if ok, _ := p.Check(net.IP(mapped)); ok {
				t.Errorf("Check(mapped %s) allowed", s)
			}
		}
	}
}

func TestPeerPolicyAllowsPublic(t *testing.T) {
	p, err := NewPeerPolicy(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Policy decisions only: no traffic is ever sent to these.
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "9.9.9.9", "::ffff:8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::1"} {
		if ok, reason := p.Check(net.ParseIP(s)); !ok {
			t.Errorf("Check(%s) denied (%s); want allowed", s, reason)
		}
	}
	if ok, reason := p.Check(net.IP{1, 2, 3}); ok || reason != DenyReasonInvalid {
		t.Errorf("Check(3 bytes) = %v %q; want invalid", ok, reason)
	}
}

func TestPeerPolicyOperatorLists(t *testing.T) {
	p, err := NewPeerPolicy([]string{"127.0.0.1/32", "10.1.0.0/16", "fd00::/8", "::ffff:192.168.7.0/120"}, []string{"10.1.2.3", "8.8.4.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip     string
		ok     bool
		reason string
	}{
		{"127.0.0.1", true, ""},
		{"::ffff:127.0.0.1", true, ""},
		{"127.0.0.2", false, DenyReasonSpecialPurpose},
		{"10.1.9.9", true, ""},
		{"10.1.2.3", false, DenyReasonOperator}, // operator deny beats allow
		{"10.2.0.1", false, DenyReasonSpecialPurpose},
		{"fd00::5", true, ""},
		{"fc00::5", false, DenyReasonSpecialPurpose},
		{"192.168.7.9", true, ""}, // mapped allow prefix applies to IPv4
		{"192.168.8.9", false, DenyReasonSpecialPurpose},
		{"8.8.4.4", false, DenyReasonOperator},
		{"8.8.8.8", true, ""},
	}
	for _, c := range cases {
		ok, reason := p.Check(net.ParseIP(c.ip))
		if ok != c.ok || reason != c.reason {
			t.Errorf("Check(%s) = %v %q; want %v %q", c.ip, ok, reason, c.ok, c.reason)
		}
	}
	if _, err := NewPeerPolicy([]string{"not-a-cidr"}, nil); err == nil {
		t.Error("bad CIDR accepted")
	}
	if _, err := NewPeerPolicy([]string{"fe80::1%eth0"}, nil); err == nil {
		t.Error("zoned address accepted")
	}
}

// FuzzPeerPolicy checks that any byte string is handled and that the
// 4-byte and mapped 16-byte forms of an IPv4 address get the same verdict.
func FuzzPeerPolicy(f *testing.F) {
	for _, s := range append(deniedPeers, "8.8.8.8", "2606:4700::1") {
		f.Add([]byte(net.ParseIP(s)))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5})
	p, err := NewPeerPolicy([]string{"127.0.0.1/32"}, []string{"8.8.4.0/24"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ok, reason := p.Check(net.IP(b))
		if ok && reason != "" || !ok && reason == "" {
			t.Fatalf("inconsistent verdict %v %q", ok, reason)
		}
		if len(b) == 4 {
			ok16, _ := p.Check(net.IP(b).To16())
			if ok16 != ok {
				t.Fatalf("%v: 4-byte %v, 16-byte %v", net.IP(b), ok, ok16)
			}
		}
		if ok {
			a, _ := netip.AddrFromSlice(b)
			a = a.Unmap()
			if a.IsLoopback() || a.IsPrivate() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
				if a != netip.MustParseAddr("127.0.0.1") {
					t.Fatalf("%v allowed", a)
				}
			}
		}
	})
}
