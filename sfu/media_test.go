package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// TestPooledAttributesKeepStreamsApart: pion's congestion controller
// notes a stream's TWCC extension id in the attribute map it is given,
// and the subscriber connection's writers hand it pooled maps. A stream
// without the extension (audio here) written after one with it must not
// see the other's id, or pion fails the write ("missing transport layer
// cc header extension") and the packet is lost.
func TestPooledAttributesKeepStreamsApart(t *testing.T) {
	ctl, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	})
	if err != nil {
		t.Fatal(err)
	}
	i, err := rtxStreamFactory{ctl}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = i.Close() })
	written := map[uint32]int{}
	sink := interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
		written[h.SSRC]++
		return len(payload), nil
	})
	const twccID = 5
	video := i.BindLocalStream(&interceptor.StreamInfo{SSRC: 1,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: twccID}}}, sink)
	audio := i.BindLocalStream(&interceptor.StreamInfo{SSRC: 2}, sink)

	payload := make([]byte, 100)
	for n := range 20 {
		ext, err := (&rtp.TransportCCExtension{TransportSequence: uint16(n)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		v := &rtp.Header{Version: 2, SSRC: 1, SequenceNumber: uint16(n), PayloadType: 96}
		if err := v.SetExtension(twccID, ext); err != nil {
			t.Fatal(err)
		}
		if _, err := video.Write(v, payload, nil); err != nil {
			t.Fatalf("video packet %d: %v", n, err)
		}
		a := &rtp.Header{Version: 2, SSRC: 2, SequenceNumber: uint16(n), PayloadType: 111}
		if _, err := audio.Write(a, payload, nil); err != nil {
			t.Fatalf("audio packet %d after a video packet: %v", n, err)
		}
	}
	if written[1] != 20 || written[2] != 20 {
		t.Fatalf("written per SSRC %v, want 20 of each", written)
	}
}
