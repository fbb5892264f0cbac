package sfu

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// rawWriter keeps a copy of every packet written, header and payload.
type rawWriter struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (w *rawWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hc := *h
	hc.CSRC, hc.Extensions = nil, nil
	w.pkts = append(w.pkts, rtp.Packet{Header: hc, Payload: bytes.Clone(payload)})
	return len(payload), nil
}

func (w *rawWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *rawWriter) packets() []rtp.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]rtp.Packet(nil), w.pkts...)
}

// TestRetransmissionOnRTXStream: a subscriber that negotiated rtx gets
// each NACKed packet on its RTX SSRC with the rtx payload type, in the
// RTX stream's own numbering, and the sequence number it NACKed (OSN)
// in front of the original payload (RFC 4588). Media keeps its SSRC and
// numbering around it.
func TestRetransmissionOnRTXStream(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &rawWriter{}
	d := h.subscribe(t, nil, 1, true)
	d.bind.Store(&binding{ssrc: 1, pt: 96, writer: w, rtxSSRC: 2, rtxPT: 97})
	for i := 100; i < 110; i++ {
		h.feed(uint16(i), i == 100)
	}
	waitFor(t, "packets", func() bool { return len(w.packets()) == 10 })
	sent := w.packets()
	lost := []rtp.Packet{sent[3], sent[6]}
	d.handleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1,
		Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost[0].SequenceNumber, lost[1].SequenceNumber})}})
	waitFor(t, "retransmissions", func() bool { return len(w.packets()) == 12 })
	h.feed(110, false)
	waitFor(t, "the next packet", func() bool { return len(w.packets()) == 13 })
	got := w.packets()
	for i, rtx := range got[10:12] {
		orig := lost[i]
		if rtx.SSRC != 2 || rtx.PayloadType != 97 {
			t.Fatalf("retransmission %d: ssrc %d pt %d, want the RTX stream's 2 and 97", i, rtx.SSRC, rtx.PayloadType)
		}
		if osn := binary.BigEndian.Uint16(rtx.Payload); osn != orig.SequenceNumber {
			t.Fatalf("retransmission %d: OSN %d, want %d", i, osn, orig.SequenceNumber)
		}
		if !bytes.Equal(rtx.Payload[2:], orig.Payload) || rtx.Timestamp != orig.Timestamp || rtx.Marker != orig.Marker {
			t.Fatalf("retransmission %d does not carry the original packet", i)
		}
	}
	if got[11].SequenceNumber != got[10].SequenceNumber+1 {
		t.Fatalf("RTX sequence numbers %d, %d: want consecutive", got[10].SequenceNumber, got[11].SequenceNumber)
	}
	if next := got[12]; next.SSRC != 1 || next.PayloadType != 96 || next.SequenceNumber != sent[9].SequenceNumber+1 ||
		!bytes.Equal(next.Payload, vp8Packet(110, false)[12:]) {
		t.Fatalf("media after the retransmissions: %+v", next.Header)
	}
	st := h.t.stats()
	if st.Retransmits != 2 || st.RTXSent != 2 {
		t.Fatalf("retransmits %d, of them on RTX %d: want 2 and 2", st.Retransmits, st.RTXSent)
	}
}

// TestRTXPayloadType: the rtx format chosen is the one whose apt names
// the bound codec.
func TestRTXPayloadType(t *testing.T) {
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, SDPFmtpLine: "apt=96"}, PayloadType: 97},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/RTX", SDPFmtpLine: "rtx-time=3000;apt=102"}, PayloadType: 103},
	}
	for _, c := range []struct {
		pt   webrtc.PayloadType
		want uint8
	}{{96, 97}, {102, 103}, {125, 0}, {9, 0}} {
		if got := rtxPayloadType(c.pt, codecs); got != c.want {
			t.Errorf("rtx for %d: %d, want %d", c.pt, got, c.want)
		}
	}
}

// TestMediaEngineOffersRTXPerVideoCodec: every video codec the SFU
// offers has its rtx format, and audio has none.
func TestMediaEngineOffersRTXPerVideoCodec(t *testing.T) {
	me, err := newMediaEngine(true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range videoCodecs {
		want := []byte("a=fmtp:" + strconv.Itoa(int(rtxPT[c.PayloadType])) + " apt=" + strconv.Itoa(int(c.PayloadType)) + "\r\n")
		if !bytes.Contains([]byte(offer.SDP), want) {
			t.Errorf("offer lacks %q", want)
		}
	}
	if n := bytes.Count([]byte(offer.SDP), []byte(" rtx/90000")); n != len(videoCodecs) {
		t.Errorf("%d rtx formats offered, want %d (one per video codec)", n, len(videoCodecs))
	}
}

// TestDuplicateVideoNotForwarded: a browser with rtx probes bandwidth by
// resending packets it already sent; those reach no subscriber twice,
// while a late packet that fills a gap still does.
func TestDuplicateVideoNotForwarded(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	h.subscribe(t, w, 1, true)
	for _, seq := range []uint16{100, 101, 102, 104, 102, 101, 103, 103} {
		h.feed(seq, seq == 100)
	}
	h.feed(105, false)
	waitFor(t, "packets", func() bool { return w.n.Load() >= 6 })
	var orig []uint16
	for _, p := range w.packets() {
		orig = append(orig, p.origSeq)
	}
	if want := []uint16{100, 101, 102, 104, 103, 105}; !slices.Equal(orig, want) {
		t.Fatalf("forwarded %v, want %v", orig, want)
	}
	if st := h.t.stats(); st.Packets != 9 {
		t.Fatalf("received %d packets, want all 9 counted", st.Packets)
	}
}

// countingInterceptor counts the packets its local stream writer sees.
type countingInterceptor struct {
	interceptor.NoOp
	seen *[]uint32
}

func (c *countingInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, a interceptor.Attributes) (int, error) {
		*c.seen = append(*c.seen, h.SSRC)
		return w.Write(h, p, a)
	})
}

type countingFactory struct{ seen *[]uint32 }

func (f countingFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &countingInterceptor{seen: f.seen}, nil
}

// TestSenderReportsSeeMediaOnly: the interceptor mediaOnlyFactory wraps
// (the sender reports) sees the stream's media SSRC only; packets on the
// RTX SSRC still reach the wire.
func TestSenderReportsSeeMediaOnly(t *testing.T) {
	var seen, wire []uint32
	i, err := mediaOnlyFactory{countingFactory{&seen}}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	w := i.BindLocalStream(&interceptor.StreamInfo{SSRC: 1, SSRCRetransmission: 2},
		interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
			wire = append(wire, h.SSRC)
			return len(p), nil
		}))
	for _, ssrc := range []uint32{1, 2, 1} {
		if _, err := w.Write(&rtp.Header{SSRC: ssrc}, []byte{0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(seen, []uint32{1, 1}) || !slices.Equal(wire, []uint32{1, 2, 1}) {
		t.Fatalf("wrapped interceptor saw %v, wire got %v", seen, wire)
	}
}
