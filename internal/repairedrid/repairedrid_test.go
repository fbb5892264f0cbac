package repairedrid

import (
	"bytes"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// TestRetransmissionCarriesRepairedRID: a packet on an encoding's RTX
// stream leaves with its rid as repaired-rtp-stream-id, as a browser
// sends it; media packets and the caller's header are untouched.
func TestRetransmissionCarriesRepairedRID(t *testing.T) {
	const ridID, rridID, midID = 10, 11, 4
	info := &interceptor.StreamInfo{
		SSRC: 1111, SSRCRetransmission: 2222,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{
			{URI: sdp.SDESMidURI, ID: midID},
			{URI: sdp.SDESRTPStreamIDURI, ID: ridID},
			{URI: sdp.SDESRepairRTPStreamIDURI, ID: rridID},
		},
	}
	var got []rtp.Header
	w := (&repairedRID{}).BindLocalStream(info, interceptor.RTPWriterFunc(
		func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
			got = append(got, *h)
			return len(p), nil
		}))
	packet := func(ssrc uint32) *rtp.Header {
		h := &rtp.Header{Version: 2, SSRC: ssrc}
		for _, e := range []struct {
			id uint8
			v  string
		}{{midID, "0"}, {ridID, "q"}} {
			if err := h.SetExtension(e.id, []byte(e.v)); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	media, rtx := packet(1111), packet(2222)
	for _, h := range []*rtp.Header{media, rtx} {
		if _, err := w.Write(h, []byte{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d packets written, want 2", len(got))
	}
	if v := got[0].GetExtension(ridID); !bytes.Equal(v, []byte("q")) || got[0].GetExtension(rridID) != nil {
		t.Errorf("media packet: rid %q, rrid %q; want rid q and no rrid", v, got[0].GetExtension(rridID))
	}
	if v := got[1].GetExtension(rridID); !bytes.Equal(v, []byte("q")) || got[1].GetExtension(ridID) != nil {
		t.Errorf("RTX packet: rrid %q, rid %q; want rrid q and no rid", v, got[1].GetExtension(ridID))
	}
	if v := got[1].GetExtension(midID); !bytes.Equal(v, []byte("0")) {
		t.Errorf("RTX packet lost its mid: %q", v)
	}
	if v := rtx.GetExtension(ridID); !bytes.Equal(v, []byte("q")) {
		t.Errorf("the caller's RTX header was changed: rid %q", v)
	}
}
