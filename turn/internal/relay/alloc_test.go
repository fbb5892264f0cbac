package relay

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

type sentToPeer struct {
	payload []byte
	to      netip.AddrPort
}

type fakePeers struct{ sent []sentToPeer }

func (f *fakePeers) SendToPeer(p []byte, to netip.AddrPort) {
	f.sent = append(f.sent, sentToPeer{append([]byte(nil), p...), to})
}

type fakeClient struct{ frames [][]byte }

func (f *fakeClient) WriteChannelData(frame []byte) error {
	f.frames = append(f.frames, append([]byte(nil), frame...))

	return nil
}

type drops struct{ n int }

func (d *drops) Inc() { d.n++ }

// An Alloc relays only what pion would: ChannelData on a bound channel to
// its peer, and a peer's datagram on a bound channel with a permission.
func TestAllocRelaysOnlyWhatPionWould(t *testing.T) {
	peers, client := &fakePeers{}, &fakeClient{}
	a := NewAlloc(AllocConfig{Relay: peers, Out: client, SendFailed: &drops{}})
	peer := netip.MustParseAddrPort("192.0.2.7:5000")
	data := func(ch uint16, payload string) []byte {
		b := binary.BigEndian.AppendUint16(nil, ch)
		b = binary.BigEndian.AppendUint16(b, uint16(len(payload))) //nolint:gosec // short
		return append(b, payload...)
	}
	if a.ToPeer(data(0x4000, "early")) {
		t.Fatal("relayed on an unbound channel")
	}
	a.Bind(0x4000, peer)
	if !a.ToPeer(data(0x4000, "hello")) || len(peers.sent) != 1 ||
		string(peers.sent[0].payload) != "hello" || peers.sent[0].to != peer {
		t.Fatalf("bound channel: sent %+v", peers.sent)
	}
	if a.ToPeer([]byte{0x40, 0x00, 0x00, 0x09, 'x'}) {
		t.Fatal("relayed ChannelData whose length runs past the datagram")
	}
	frame := make([]byte, 4+MaxPayload+3)
	n := copy(frame[4:], "back")
	if a.ToClient(frame, n, peer) {
		t.Fatal("relayed to the client without a permission")
	}
	a.Permit(peer.Addr())
	if !a.ToClient(frame, n, peer) || len(client.frames) != 1 || !bytes.Equal(client.frames[0], data(0x4000, "back")) {
		t.Fatalf("to client: %x", client.frames)
	}
	if ch, perms := a.Known(); ch != 1 || perms != 1 {
		t.Fatalf("known %d channels, %d permissions", ch, perms)
	}
	a.Unbind(0x4000, peer)
	a.Revoke(peer.Addr())
	if a.ToPeer(data(0x4000, "late")) || a.ToClient(frame, n, peer) {
		t.Fatal("relayed after the channel and permission ended")
	}
	a.Bind(0x4001, peer)
	a.Permit(peer.Addr())
	a.SetAmbiguous()
	if a.ToPeer(data(0x4001, "x")) || a.ToClient(frame, n, peer) {
		t.Fatal("an ambiguous mirror relayed")
	}
	var none *Alloc
	if none.ToPeer(data(0x4000, "x")) {
		t.Fatal("a nil Alloc relayed")
	}
}
