package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// v6PeerAddr is an XOR-PEER-ADDRESS of the IPv6 family whatever the
// address (pion's setter picks IPv4 for a mapped address).
type v6PeerAddr struct {
	ip   netip.Addr
	port uint16
}

func (p v6PeerAddr) AddTo(m *stun.Message) error {
	v := make([]byte, 20)
	v[1] = 0x02
	binary.BigEndian.PutUint16(v[2:4], p.port^uint16(stunMagicCookie>>16))
	var key [16]byte
	binary.BigEndian.PutUint32(key[:4], stunMagicCookie)
	copy(key[4:], m.TransactionID[:])
	ip := p.ip.As16()
	for i := range ip {
		v[4+i] = ip[i] ^ key[i]
	}
	m.Add(stun.AttrXORPeerAddress, v)

	return nil
}

// checkSigned fails unless res carries a MESSAGE-INTEGRITY made with the
// client's long-term key.
func checkSigned(t *testing.T, res *stun.Message, user, pass string) {
	t.Helper()
	key := stun.NewLongTermIntegrity(user, testRealm, pass)
	if err := key.Check(res); err != nil {
		t.Fatalf("%s answer not signed with the client's key: %v", res.Type, err)
	}
}

// A ChannelBind to a denied peer is Forbidden, as coturn answers it and as
// CreatePermission already was; pion says 401, which blames the
// credentials.
func TestChannelBindToDeniedPeerIsForbidden(t *testing.T) {
	ts := startServer(t, testConfig()) // loopback peers refused
	k := newCanary(t)
	kp := k.conn.LocalAddr().(*net.UDPAddr)
	u, p := RESTCredentials(testSecret, "eve", time.Hour, time.Now())
	for _, tr := range []struct{ network, addr string }{{"udp", ts.udp}, {"tcp", ts.tcp}} {
		t.Run(tr.network, func(t *testing.T) {
			rc := newRawClient(t, tr.network, tr.addr, u, p)
			if _, code := rc.do(stun.MethodAllocate, requestedTransport(17)); code != 0 {
				t.Fatalf("allocate: %d", code)
			}
			before := counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonSpecialPurpose))
			res, code := rc.do(stun.MethodChannelBind, channelNumber(0x4001), peerAddr{kp.IP, kp.Port})
			if code != 403 {
				t.Fatalf("ChannelBind to a loopback peer: code %d, want 403", code)
			}
			checkSigned(t, res, u, p)
			if counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonSpecialPurpose)) != before+1 {
				t.Fatal("denial not counted once")
			}
			// A refused credential still gets 401 (only the peer refusal changed).
			bad := newRawClient(t, tr.network, tr.addr, u, "wrong")
			if _, code := bad.do(stun.MethodAllocate, requestedTransport(17)); code != 401 {
				t.Fatalf("allocate with a wrong password: %d, want 401", code)
			}
		})
	}
	if n := k.received(); n != 0 {
		t.Fatalf("canary received %d bytes", n)
	}
}

// An IPv4-mapped IPv6 peer on an IPv6 allocation is Forbidden, not a
// family mismatch (pion's 443); a plain IPv4 peer there still is one.
func TestMappedPeerOnIPv6AllocationIsForbidden(t *testing.T) {
	cfg := testConfig()
	cfg.PublicIPv6 = "::1"
	cfg.RelayBindIPv6 = "::1"
	cfg.AllowedPeerCIDRs = []string{"192.0.2.0/24"} // even an allowed IPv4 range stays unreachable from IPv6
	ts := startServer(t, cfg)
	u, p := RESTCredentials(testSecret, "v6", time.Hour, time.Now())
	rc := newRawClient(t, "udp", ts.udp, u, p)
	if _, code := rc.do(stun.MethodAllocate, requestedTransport(17),
		stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{0x02, 0, 0, 0}}); code != 0 {
		t.Fatalf("IPv6 allocation: %d", code)
	}
	mapped := v6PeerAddr{netip.MustParseAddr("::ffff:192.0.2.10"), 5000}
	res, code := rc.do(stun.MethodCreatePermission, mapped)
	if code != 403 {
		t.Fatalf("CreatePermission to %s: code %d, want 403", mapped.ip, code)
	}
	checkSigned(t, res, u, p)
	res, code = rc.do(stun.MethodChannelBind, channelNumber(0x4002), mapped)
	if code != 403 {
		t.Fatalf("ChannelBind to %s: code %d, want 403", mapped.ip, code)
	}
	checkSigned(t, res, u, p)
	if got := counter(ts.metrics.peerDenials.WithLabelValues(DenyReasonMappedOnIPv6)); got != 2 {
		t.Fatalf("mapped-peer denials counted %v, want 2", got)
	}
	if _, code := rc.do(stun.MethodCreatePermission, peerAddr{net.IPv4(192, 0, 2, 10), 5000}); code != 443 {
		t.Fatalf("CreatePermission to an IPv4 peer on an IPv6 allocation: code %d, want 443", code)
	}
}
