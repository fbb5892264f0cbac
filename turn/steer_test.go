package turn

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// A reservation is steered to the socket that issued its token, and so is
// the client's later traffic; never to a socket of another address.
func TestSteeringStaysOnOneAddress(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.1:3478")
	a, b := &clientPacketConn{local: addr}, &clientPacketConn{local: addr}
	other := &clientPacketConn{local: netip.MustParseAddrPort("192.0.2.2:3478")}
	token := stun.RawAttribute{Type: stun.AttrReservationToken, Value: []byte("12345678")}
	issued := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), token)
	claim := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), token)
	refresh := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest))
	client := netip.MustParseAddrPort("198.51.100.9:40000")

	st := newSteering()
	if st.route(claim.Raw, client, b) != nil {
		t.Fatal("steered before any token was issued")
	}
	st.issued(issued.Raw, a)
	if got := st.route(claim.Raw, client, other); got != nil {
		t.Fatal("steered to a socket of another address")
	}
	if got := st.route(claim.Raw, client, b); got != a {
		t.Fatalf("claim on b steered to %p, want a (%p)", got, a)
	}
	st.allocated(client, addr)
	if got := st.route(refresh.Raw, client, b); got != a {
		t.Fatal("the client's later request not steered to its allocation's socket")
	}
	if got := st.route(refresh.Raw, client, other); got != nil {
		t.Fatal("traffic to another address steered")
	}
	st.released(client, addr)
	if got := st.route(refresh.Raw, client, b); got != nil {
		t.Fatal("steered after the allocation ended")
	}
	st.forgetSocket(a)
	if got := st.route(claim.Raw, netip.MustParseAddrPort("198.51.100.9:40002"), b); got != nil {
		t.Fatal("steered to a closed socket")
	}
}
