package sendhistory

import (
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// feedback builds what a pion receiver sends for the given arrivals
// (sequence number -> arrival in µs; absent: lost), for packets
// first..last.
func feedback(t *testing.T, arrivals map[uint16]int64, first, last uint16) []*rtcp.TransportLayerCC {
	t.Helper()
	r := twcc.NewRecorder(1)
	for seq := first; ; seq++ {
		if at, ok := arrivals[seq]; ok {
			r.Record(2, seq, at)
		}
		if seq == last {
			break
		}
	}
	var out []*rtcp.TransportLayerCC
	for _, p := range r.BuildFeedbackPacket() {
		// A real receiver's feedback crosses the wire.
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var fb rtcp.TransportLayerCC
		if err := fb.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, &fb)
	}
	if len(out) == 0 {
		t.Fatal("the recorder built no feedback")
	}
	return out
}

// TestFeedbackMatchesWhatWasSent: packets sent 5 ms apart, every tenth
// lost, the rest arriving with a growing queue. Each reported packet
// comes back with its size and send time, lost ones as not received,
// and the arrivals' differences as the receiver measured them (to its
// 250 µs resolution). The sequence numbers wrap through 65535.
func TestFeedbackMatchesWhatWasSent(t *testing.T) {
	var h History
	t0 := time.Unix(1000, 0)
	first := uint16(65500)
	arrivals := map[uint16]int64{}
	const n = 80
	for i := range n {
		seq := first + uint16(i)
		h.Sent(seq, t0.Add(time.Duration(i)*5*time.Millisecond), 1000+i)
		if i%10 != 3 {
			arrivals[seq] = 5_000_000 + int64(i)*5_250 // 5 s + 5.25 ms apart
		}
	}
	var acks []Ack
	for _, fb := range feedback(t, arrivals, first, first+n-1) {
		var err error
		if acks, err = h.Feedback(fb, acks); err != nil {
			t.Fatal(err)
		}
	}
	// The recorder reports from the first to the last packet it got.
	if len(acks) != n {
		t.Fatalf("%d acks, want %d", len(acks), n)
	}
	var prev *Ack
	for i, a := range acks {
		seq := first + uint16(i)
		if a.Seq != seq || a.Size != 1000+i || !a.Sent.Equal(t0.Add(time.Duration(i)*5*time.Millisecond)) {
			t.Fatalf("ack %d: %+v, want seq %d, size %d", i, a, seq, 1000+i)
		}
		_, got := arrivals[seq]
		if a.Received != got || a.Timed != got {
			t.Fatalf("ack %d (seq %d): received %v, want %v", i, seq, a.Received, got)
		}
		if !a.Received {
			continue
		}
		if prev != nil {
			want := time.Duration(arrivals[seq]-arrivals[prev.Seq]) * time.Microsecond
			if d := a.Arrival - prev.Arrival - want; d < -250*time.Microsecond || d > 250*time.Microsecond {
				t.Fatalf("seq %d arrived %v after seq %d, want %v", seq, a.Arrival-prev.Arrival, prev.Seq, want)
			}
		}
		prev = &acks[i]
	}
}

// TestFeedbackForgetsWhatItNoLongerHolds: a packet older than Size
// sequence numbers has been overwritten; feedback about it (a late or
// replayed report) yields nothing rather than another packet's record.
func TestFeedbackForgetsWhatItNoLongerHolds(t *testing.T) {
	var h History
	t0 := time.Unix(1000, 0)
	for i := range Size + 10 {
		h.Sent(uint16(i), t0.Add(time.Duration(i)*time.Millisecond), 100)
	}
	acks, err := h.Feedback(feedback(t, map[uint16]int64{0: 1000, 1: 2000, 2: 3000}, 0, 2)[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks) != 0 {
		t.Fatalf("acks for overwritten packets: %+v", acks)
	}
	acks, err = h.Feedback(feedback(t, map[uint16]int64{Size + 5: 1000}, Size+5, Size+5)[0], nil)
	if err != nil || len(acks) != 1 || acks[0].Seq != Size+5 {
		t.Fatalf("acks %+v, %v; want the one packet still held", acks, err)
	}
}

// TestFeedbackMalformed: statuses that promise more deltas than the
// packet carries are an error, not a read past the end.
func TestFeedbackMalformed(t *testing.T) {
	var h History
	h.Sent(7, time.Unix(1, 0), 100)
	h.Sent(8, time.Unix(1, 0), 100)
	fb := &rtcp.TransportLayerCC{
		BaseSequenceNumber: 7,
		PacketStatusCount:  2,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{
			PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 2}},
		RecvDeltas: []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}},
	}
	acks, err := h.Feedback(fb, nil)
	if err == nil {
		t.Fatal("no error for two received statuses and one delta")
	}
	if len(acks) != 1 || acks[0].Seq != 7 {
		t.Fatalf("acks before the fault: %+v, want seq 7's", acks)
	}
}

// TestReferenceTimeWraps: the 24-bit reference time wraps; arrivals
// keep growing across it.
func TestReferenceTimeWraps(t *testing.T) {
	var h History
	a := h.reference(1<<24 - 1)
	b := h.reference(0)
	if b-a != 64*time.Millisecond {
		t.Fatalf("across the wrap: %v, want 64ms", b-a)
	}
	if c := h.reference(1<<24 - 2); c-a != -64*time.Millisecond {
		t.Fatalf("a late feedback from before the wrap: %v after the first, want -64ms", c-a)
	}
}

func TestSentAllocatesNothing(t *testing.T) {
	var h History
	now := time.Now()
	seq := uint16(0)
	if n := testing.AllocsPerRun(1000, func() { h.Sent(seq, now, 1200); seq++ }); n != 0 {
		t.Fatalf("Sent allocates %.1f times per packet", n)
	}
}

func BenchmarkSent(b *testing.B) {
	var h History
	now := time.Now()
	seq := uint16(0)
	for b.Loop() {
		h.Sent(seq, now, 1200)
		seq++
	}
}

// BenchmarkPionSent is the same record made through pion's GCC (what
// the SFU uses today): its stream writer with the TWCC extension, an
// attribute map handed in as the SFU does (sfu/media.go), a writer
// below that does nothing.
func BenchmarkPionSent(b *testing.B) {
	bwe, err := gcc.NewSendSideBWE(gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bwe.Close() })
	const id = 5
	w := bwe.AddStream(&interceptor.StreamInfo{SSRC: 1,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: id}}},
		interceptor.RTPWriterFunc(func(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return len(p), nil }))
	h := &rtp.Header{Version: 2, SSRC: 1}
	payload := make([]byte, 1200)
	attrs := interceptor.Attributes{}
	seq := uint16(0)
	ext := make([]byte, 2)
	for b.Loop() {
		ext[0], ext[1] = byte(seq>>8), byte(seq)
		if err := h.SetExtension(id, ext); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(h, payload, attrs); err != nil {
			b.Fatal(err)
		}
		seq++
	}
}

// TestFeedbackMarksPadding: a packet recorded with SentPadding (a
// probe) comes back marked as padding, with its size; media does not.
func TestFeedbackMarksPadding(t *testing.T) {
	var h History
	t0 := time.Unix(1000, 0)
	arrivals := map[uint16]int64{}
	for i := range uint16(10) {
		if i%2 == 1 {
			h.SentPadding(i, t0.Add(time.Duration(i)*time.Millisecond), 275)
		} else {
			h.Sent(i, t0.Add(time.Duration(i)*time.Millisecond), 1200)
		}
		arrivals[i] = int64(i) * 1000
	}
	var acks []Ack
	for _, fb := range feedback(t, arrivals, 0, 9) {
		var err error
		if acks, err = h.Feedback(fb, acks); err != nil {
			t.Fatal(err)
		}
	}
	if len(acks) != 10 {
		t.Fatalf("%d acks, want 10", len(acks))
	}
	for _, a := range acks {
		probe := a.Seq%2 == 1
		if a.Padding != probe || (probe && a.Size != 275) || (!probe && a.Size != 1200) {
			t.Errorf("ack %+v: padding %v, size %d", a, a.Padding, a.Size)
		}
	}
}
