package turn

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// TestTurnutilsUclientReservation runs coturn's default flow: per client an
// RTP allocation with EVEN-PORT (reserve bit) and an RTCP allocation with
// the RESERVATION-TOKEN of the first, each answered the way coturn does.
// With several SO_REUSEPORT sockets the RTCP allocation usually reaches a
// different socket than the RTP one.
func TestTurnutilsUclientReservation(t *testing.T) {
	peer := startPeer(t)
	cfg := testConfig()
	cfg.UDPSocketsPerAddress = 4
	cfg.AllowedPeerCIDRs = []string{"127.0.0.1/32"}
	ts := startServer(t, cfg)
	for _, tc := range []struct {
		name, transport, addr string
		send                  bool
	}{
		{"udp", "udp", ts.udp, false}, {"tcp", "tcp", ts.tcp, false}, {"udp-send", "udp", ts.udp, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const clients, msgs = 8, 20
			r := runUclient(t, uclientRun{server: tc.addr, transport: tc.transport, peerPort: peer,
				clients: clients, msgs: msgs, size: 200, intervalMs: 5, rtcp: true, send: tc.send})
			t.Logf("turnutils_uclient: sent %d, received %d, lost %d", r.sent, r.recv, r.lost)
			if strings.Contains(r.out, "error 508") || strings.Contains(r.out, "error 400") {
				t.Fatalf("uclient got an allocation refused\n%s", tail(r.out))
			}
			if r.lost != 0 || r.recv != clients*msgs || r.sent != clients*msgs {
				t.Fatalf("sent %d recv %d lost %d, want %d each and 0 lost\n%s", r.sent, r.recv, r.lost, clients*msgs, tail(r.out))
			}
		})
	}
}

// An EVEN-PORT Allocate with the R bit gets an even port P and a token;
// P+1 is bound until the token claims it, from another client port that
// the kernel may hash to another of the address's sockets.
func TestEvenPortReservation(t *testing.T) {
	cfg := testConfig()
	cfg.UDPSocketsPerAddress = 4
	ts := startServer(t, cfg)
	u, p := RESTCredentials(testSecret, "rtp", time.Hour, time.Now())
	for i := range 8 {
		rtp := newRawClient(t, "udp", ts.udp, u, p)
		res, code := rtp.do(stun.MethodAllocate, requestedTransport(17),
			stun.RawAttribute{Type: stun.AttrEvenPort, Value: []byte{0x80}})
		if code != 0 {
			t.Fatalf("round %d: EVEN-PORT allocate: %d", i, code)
		}
		var relayed stun.XORMappedAddress
		if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil || relayed.Port%2 != 0 {
			t.Fatalf("round %d: relayed address %v %v, want an even port", i, relayed, err)
		}
		token, err := res.Get(stun.AttrReservationToken)
		if err != nil {
			t.Fatalf("round %d: no RESERVATION-TOKEN: %v", i, err)
		}
		// Nobody else may take P+1 meanwhile.
		next := net.JoinHostPort("127.0.0.1", strconv.Itoa(relayed.Port+1))
		if c, err := net.ListenPacket("udp4", next); err == nil {
			_ = c.Close()
			t.Fatalf("round %d: %s was free after the reservation", i, next)
		}
		rtcp := newRawClient(t, "udp", ts.udp, u, p)
		res, code = rtcp.do(stun.MethodAllocate, requestedTransport(17),
			stun.RawAttribute{Type: stun.AttrReservationToken, Value: token})
		if code != 0 {
			t.Fatalf("round %d: allocate with the token: %d", i, code)
		}
		var second stun.XORMappedAddress
		if err := second.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil || second.Port != relayed.Port+1 {
			t.Fatalf("round %d: second relay %v %v, want port %d", i, second, err, relayed.Port+1)
		}
		// The claimed allocation lives where its Allocate was steered:
		// a Refresh from the same client reaches it.
		if _, code := rtcp.do(stun.MethodRefresh, lifetime(time.Minute)); code != 0 {
			t.Fatalf("round %d: refresh of the reserved allocation: %d", i, code)
		}
	}
}
