package sfu

import (
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/parleyhq/parley/sfu/internal/probe"
)

// TestProbePaddingOnRTXStream: a probe packet queued for a subscriber
// goes out as a padding-only packet (no payload, 255 bytes of padding)
// on its RTX stream, numbered in that stream after the retransmissions,
// counted in the probe bytes and not as a retransmission or in the
// receiver's counts; the media stream is left alone.
func TestProbePaddingOnRTXStream(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &rawWriter{}
	d := h.subscribe(t, nil, 1, true)
	d.bind.Store(&binding{ssrc: 1, pt: 96, writer: d.countedWriter(w, 2), rtxSSRC: 2, rtxPT: 97})
	for i := 100; i < 105; i++ {
		h.feed(uint16(i), i == 100)
	}
	waitFor(t, "media", func() bool { return len(w.packets()) == 5 })
	d.handleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1,
		Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{w.packets()[2].SequenceNumber})}})
	waitFor(t, "the retransmission", func() bool { return len(w.packets()) == 6 })
	for range 3 {
		if !d.q.push(outPacket{d: d, pad: probePadSize}) {
			t.Fatal("queue full")
		}
	}
	h.feed(105, false)
	waitFor(t, "the padding and the next packet", func() bool { return len(w.packets()) == 10 })

	pkts := w.packets()
	rtxSeq := pkts[5].SequenceNumber
	for i, p := range pkts[6:9] {
		if p.SSRC != 2 || p.PayloadType != 97 || !p.Padding || p.Header.PaddingSize != probePadSize || len(p.Payload) != 0 {
			t.Errorf("probe %d: %+v, payload %d bytes; want padding only on the RTX stream", i, p.Header, len(p.Payload))
		}
		if want := rtxSeq + uint16(i) + 1; p.SequenceNumber != want {
			t.Errorf("probe %d: RTX sequence %d, want %d", i, p.SequenceNumber, want)
		}
	}
	if last := pkts[9]; last.SSRC != 1 || last.SequenceNumber != pkts[4].SequenceNumber+1 {
		t.Errorf("media after the probes: %+v, want the next media packet", last.Header)
	}
	if got := metricValue(t, h.s.m.probeBytes); got != 3*(rtpHeaderLen+probePadSize) {
		t.Errorf("probe bytes %v, want %d", got, 3*(rtpHeaderLen+probePadSize))
	}
	if n := d.tx.rtxPackets.Load(); n != 1 {
		t.Errorf("%d RTX packets counted for the receiver, want the retransmission only", n)
	}
	if n := h.t.retransmits.Load(); n != 1 {
		t.Errorf("%d retransmits, want 1", n)
	}
}

// TestProbeTap: the tap records a padding-only packet on the RTX stream
// under the transport-wide number the writer above it gave, skips
// media, and hands transport-cc feedback read on the connection to the
// recorder.
func TestProbeTap(t *testing.T) {
	const extID = 3
	rec := &probe.Recorder{}
	rec.StartCluster(1)
	tap := &probeTap{rec: rec}
	info := &interceptor.StreamInfo{SSRC: 1, SSRCRetransmission: 2,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: extID}}}
	var written int
	wr := tap.BindLocalStream(info, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) {
		written++
		return 0, nil
	}))
	write := func(h rtp.Header, payload []byte, seq uint16) {
		ext, _ := (&rtp.TransportCCExtension{TransportSequence: seq}).Marshal()
		if err := h.SetExtension(extID, ext); err != nil {
			t.Fatal(err)
		}
		if _, err := wr.Write(&h, payload, nil); err != nil {
			t.Fatal(err)
		}
	}
	write(rtp.Header{Version: 2, SSRC: 1, PayloadType: 96}, make([]byte, 100), 41)
	write(rtp.Header{Version: 2, SSRC: 2, PayloadType: 97, Padding: true, PaddingSize: probePadSize}, nil, 42)
	if written != 2 {
		t.Fatalf("%d packets passed the tap, want 2", written)
	}
	if r := rec.Result(1); r.Sent != 1 || r.Received != 0 {
		t.Fatalf("recorded %+v, want the probe alone", r)
	}

	rx := twcc.NewRecorder(9)
	rx.Record(2, 41, 1_000_000)
	rx.Record(2, 42, 1_001_000)
	raw, err := rtcp.Marshal(rx.BuildFeedbackPacket())
	if err != nil {
		t.Fatal(err)
	}
	rd := tap.BindRTCPReader(interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, raw), a, nil
	}))
	if _, _, err := rd.Read(make([]byte, 1500), nil); err != nil {
		t.Fatal(err)
	}
	if r := rec.Result(1); r.Sent != 1 || r.Received != 1 {
		t.Fatalf("after the feedback: %+v, want the probe received", r)
	}
}

// TestSentFloor: GCC signalling congestion without loss and falling
// below what is sent (a receiver short of CPU, lab scenario 1) first
// holds the estimate at what the chosen layers cost; if the congestion
// lasts it comes down to 85% of what is sent a second later, and again
// once a second from what is sent by then; loss or GCC back up ends it.
// With Parley's estimator only a fall with no congestion signalled
// holds.
func TestSentFloor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var f sentFloor
	if r := f.update(at(0), 1_000_000, 900_000, 900_000, 0, false); r != 0 {
		t.Fatalf("no congestion: floor %d", r)
	}
	// GCC at its minimum while 850 kbit/s arrive without loss: the
	// estimate holds at what is sent.
	if r := f.update(at(500), 100_000, 850_000, 800_000, 0.001, true); r != 850_000 {
		t.Fatalf("GCC collapsed without loss: floor %d, want what is sent, 850000", r)
	}
	// Still congested half a second later: no decrease yet, even though
	// less is sent now.
	if r := f.update(at(1000), 100_000, 600_000, 600_000, 0, true); r != 850_000 {
		t.Fatalf("congested 0.5 s later: floor %d", r)
	}
	// A second later: to 0.85 of what is sent now.
	if r := f.update(at(1500), 110_000, 600_000, 600_000, 0, true); r != 510_000 {
		t.Fatalf("congested 1 s later: floor %d, want 510000", r)
	}
	// The congestion over: the floor stays.
	if r := f.update(at(3000), 150_000, 450_000, 450_000, 0, false); r != 510_000 {
		t.Fatalf("no more congestion: floor %d", r)
	}
	// Loss: the link is full, GCC's estimate is the one.
	if r := f.update(at(3500), 150_000, 450_000, 450_000, 0.05, true); r != 0 {
		t.Fatalf("loss: floor %d", r)
	}
	// Just after a step up, the last second's rate is still the lower
	// layers': the hold is at what the layers chosen now cost.
	if r := f.update(at(4000), 300_000, 400_000, 1_700_000, 0, true); r != 1_700_000 {
		t.Fatalf("congested after a step up: floor %d, want 1700000", r)
	}
	f = sentFloor{}
	// No layers known: the hold is at what was sent.
	if r := f.update(at(5000), 100_000, 850_000, 0, 0, true); r != 850_000 {
		t.Fatalf("congested, no layers: floor %d, want 850000", r)
	}
	// GCC back up to it ends it too.
	if r := f.update(at(5500), 860_000, 850_000, 850_000, 0, false); r != 0 {
		t.Fatalf("GCC caught up: floor %d", r)
	}
	// GCC above what is sent: nothing to keep.
	if r := f.update(at(7000), 900_000, 850_000, 850_000, 0, true); r != 0 {
		t.Fatalf("GCC above what is sent: floor %d", r)
	}
	// GCC below what the layers cost with no loss, its overuse signal
	// missed between two samples: a hold all the same...
	if r := f.update(at(8000), 1_130_000, 1_450_000, 1_400_000, 0.001, false); r != 1_450_000 {
		t.Fatalf("GCC fell below what is sent unsignalled: floor %d, want 1450000", r)
	}
	// ...that no decrease follows while nothing signals congestion.
	if r := f.update(at(10_000), 1_130_000, 1_450_000, 1_400_000, 0, false); r != 1_450_000 {
		t.Fatalf("2 s later, no signal: floor %d, want 1450000", r)
	}
	f = sentFloor{}
	// The same fall with loss: the link is full.
	if r := f.update(at(11_000), 1_130_000, 1_450_000, 1_400_000, 0.03, false); r != 0 {
		t.Fatalf("GCC fell below the layers with 3%% loss: floor %d", r)
	}
	// With Parley's estimator (quietOnly) an unsignalled fall below what
	// is sent holds, and a signal of congestion ends the hold at once.
	f = sentFloor{quietOnly: true}
	if r := f.update(at(12_000), 100_000, 300_000, 700_000, 0, false); r != 700_000 {
		t.Fatalf("Parley's estimator fell unsignalled: floor %d, want what the layers cost, 700000", r)
	}
	if r := f.update(at(12_500), 800_000, 1_150_000, 1_150_000, 0, true); r != 0 {
		t.Fatalf("Parley's estimator congested: floor %d, want none", r)
	}
}
