package sfu

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Tests of the forwarding path without a network: a publishedTrack fed by
// handlePacket, downTracks bound to fake writers.

type recvPacket struct {
	seq      uint16
	ssrc     uint32
	pt       uint8
	key      bool
	payload0 byte // first payload byte, to check the right packet arrived
	origSeq  uint16
	marker   bool
}

// fakeWriter records what a subscriber connection would have sent.
type fakeWriter struct {
	mu   sync.Mutex
	got  []recvPacket
	gate chan struct{} // if non-nil, each write waits for a token
	n    atomic.Int64
}

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	w.got = append(w.got, recvPacket{seq: h.SequenceNumber, ssrc: h.SSRC, pt: h.PayloadType,
		key: len(payload) > 1 && payload[1]&1 == 0, payload0: payload[len(payload)-1],
		origSeq: uint16(payload[2])<<8 | uint16(payload[3]), marker: h.Marker})
	w.mu.Unlock()
	w.n.Add(1)
	return len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *fakeWriter) packets() []recvPacket {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]recvPacket(nil), w.got...)
}

type harness struct {
	s    *SFU
	t    *publishedTrack
	plis atomic.Int64
	hdr  rtp.Header
	subs []*Peer
}

func newHarness(tb testing.TB, cfg Config) *harness {
	tb.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{s: &SFU{cfg: cfg, log: slog.New(slog.DiscardHandler), m: m}}
	h.t = newPublishedTrack(h.s, trackParams{
		room:      "r",
		info:      TrackInfo{SID: "TR_v", ParticipantID: "PA_pub", Kind: "video", Codec: "video/VP8"},
		clockRate: 90000,
		sendPLI:   func() error { h.plis.Add(1); return nil },
	})
	return h
}

// newSimulcastHarness is newHarness with a track published in three
// layers (q, h, f).
func newSimulcastHarness(tb testing.TB, cfg Config) *harness {
	tb.Helper()
	h := newHarness(tb, cfg)
	h.t = newPublishedTrack(h.s, trackParams{
		room:         "r",
		info:         TrackInfo{SID: "TR_s", ParticipantID: "PA_pub", Kind: "video", Codec: "video/VP8"},
		clockRate:    90000,
		rids:         []string{"q", "h", "f"},
		sendLayerPLI: func(uint32) error { h.plis.Add(1); return nil },
	})
	for i, ly := range h.t.layers {
		ly.ssrc.Store(uint32(100 + i))
	}
	return h
}

// vp8LayerPacket is a one-packet VP8 frame of a simulcast layer, with a
// 15-bit PictureID and a TL0PICIDX that follow seq, and the layer and seq
// in payload bytes 6-8.
func vp8LayerPacket(layer int, seq uint16, key bool) []byte {
	b5 := byte(0x01)
	if key {
		b5 = 0x00
	}
	pid := seq + uint16(1000*layer)
	p := rtp.Packet{
		Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq)*3000 + uint32(layer)<<20,
			SSRC: uint32(100 + layer), Marker: true},
		Payload: append([]byte{0x90, 0xc0, 0x80 | byte(pid>>8&0x7f), byte(pid), byte(seq), b5, byte(layer),
			byte(seq >> 8), byte(seq)}, make([]byte, 1100)...),
	}
	b, _ := p.Marshal()
	return b
}

// subscribe adds a bound subscriber; run starts its writer goroutine.
func (h *harness) subscribe(tb testing.TB, w webrtc.TrackLocalWriter, ssrc uint32, run bool) *downTrack {
	p := &Peer{s: h.s, id: "PA_sub", queue: newSendQueue(h.s.cfg.SubscriberQueue, h.s.m, nil)}
	p.subReady.Store(true) // as if its connection were up
	d := newDownTrack(h.t, p)
	d.bind.Store(&binding{ssrc: ssrc, pt: 100, writer: w})
	h.t.addDown(d)
	if run {
		var wg sync.WaitGroup
		wg.Go(p.queue.run)
		tb.Cleanup(func() { p.queue.stop(); wg.Wait() })
	}
	h.subs = append(h.subs, p)
	return d
}

// vp8Packet builds a one-packet VP8 frame. The payload carries the
// original sequence number so tests can check which packet arrived.
func vp8Packet(seq uint16, key bool) []byte {
	b1 := byte(0x01)
	if key {
		b1 = 0x00
	}
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 1234},
		Payload: append([]byte{0x10, b1, byte(seq >> 8), byte(seq)}, make([]byte, 1100)...),
	}
	p.Payload[len(p.Payload)-1] = byte(seq)
	b, _ := p.Marshal()
	return b
}

func (h *harness) feed(seq uint16, key bool) {
	h.t.handlePacket(vp8Packet(seq, key), &h.hdr, time.Now())
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func TestSlowSubscriberDoesNotHurtFastOne(t *testing.T) {
	// synctest: the polling sleeps below cost no wall-clock time.
	synctest.Test(t, testSlowSubscriberDoesNotHurtFastOne)
}

func testSlowSubscriberDoesNotHurtFastOne(t *testing.T) {
	cfg := DefaultConfig()
	h := newHarness(t, cfg)
	fast := &fakeWriter{}
	slow := &fakeWriter{gate: make(chan struct{})}
	h.subscribe(t, fast, 1111, true)
	h.subscribe(t, slow, 2222, true)

	const total = 2000
	for i := range total {
		seq := uint16(65000 + i) // wraps mid-test
		h.feed(seq, i%100 == 0)
		// The fast subscriber keeps up, as a healthy one on a real link would.
		waitFor(t, "fast subscriber", func() bool { return fast.n.Load() == int64(i+1) })
	}
	got := fast.packets()
	if len(got) != total {
		t.Fatalf("fast subscriber got %d packets, want %d", len(got), total)
	}
	for i, p := range got {
		if p.origSeq != uint16(65000+i) || p.seq != uint16(65000+i) || p.ssrc != 1111 || p.pt != 100 {
			t.Fatalf("fast packet %d: %+v", i, p)
		}
	}
	st := h.t.stats()
	if st.Drops[DropQueueFull] == 0 || st.Drops[DropKeyframe] == 0 {
		t.Fatalf("slow subscriber's drops not counted: %v", st.Drops)
	}

	// Release the slow subscriber: it gets what was queued, then resumes
	// at a key frame with no hole in its sequence numbers.
	close(slow.gate)
	waitFor(t, "slow queue drains", func() bool { return len(h.subs[1].queue.ch) == 0 })
	end := uint16(65000 + total%65536 - 65536)
	h.feed(end, true)
	for i := 1; i < 5; i++ {
		h.feed(end+uint16(i), false)
	}
	waitFor(t, "slow subscriber resumes", func() bool {
		p := slow.packets()
		return len(p) > 0 && p[len(p)-1].origSeq == end+4
	})
	// Packets queued while it was stuck were evicted from the cache by
	// then (counted as cache_miss); whatever it does get is either the
	// next packet of the stream or the start of a key frame, and once it
	// resumed its numbering has no holes.
	sp := slow.packets()
	resumed := -1
	for i := 1; i < len(sp); i++ {
		if sp[i].origSeq != sp[i-1].origSeq+1 {
			if !sp[i].key {
				t.Fatalf("slow subscriber resumed at a delta frame (orig %d after %d)", sp[i].origSeq, sp[i-1].origSeq)
			}
			resumed = i
		}
	}
	if resumed < 0 {
		t.Fatal("slow subscriber never skipped ahead")
	}
	for i := resumed + 1; i < len(sp); i++ {
		if sp[i].seq != sp[i-1].seq+1 {
			t.Fatalf("sequence gap after resume: %d -> %d", sp[i-1].seq, sp[i].seq)
		}
	}
	if st := h.t.stats(); st.Drops[DropCacheMiss] == 0 {
		t.Fatalf("stale queued packets not counted: %v", st.Drops)
	}
	if h.plis.Load() == 0 {
		t.Fatal("falling behind did not request a key frame")
	}
}

func TestNewSubscriberWaitsForKeyframe(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	h.subscribe(t, w, 1, true)
	for i := range 5 {
		h.feed(uint16(i), false)
	}
	h.feed(5, true)
	h.feed(6, false)
	waitFor(t, "packets", func() bool { return w.n.Load() == 2 })
	got := w.packets()
	if !got[0].key || got[0].origSeq != 5 || got[1].origSeq != 6 || got[1].seq != got[0].seq+1 {
		t.Fatalf("got %+v", got)
	}
	if st := h.t.stats(); st.Drops[DropKeyframe] != 5 || h.plis.Load() != 1 {
		t.Fatalf("drops %v plis %d, want 5 keyframe_wait drops and one throttled PLI", st.Drops, h.plis.Load())
	}
}

func TestNACKAnsweredFromCache(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	d := h.subscribe(t, w, 1, true)
	h.feed(99, false) // dropped: waiting for a key frame, removed from numbering
	for i := 100; i < 110; i++ {
		h.feed(uint16(i), i == 100)
	}
	waitFor(t, "packets", func() bool { return w.n.Load() == 10 })
	sent := w.packets()
	// The subscriber lost the 4th packet it was sent and NACKs its number.
	lost := sent[3]
	nack := &rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost.seq})}
	d.handleRTCP([]rtcp.Packet{nack})
	waitFor(t, "retransmission", func() bool { return w.n.Load() == 11 })
	rtx := w.packets()[10]
	if rtx.seq != lost.seq || rtx.origSeq != lost.origSeq || rtx.payload0 != lost.payload0 {
		t.Fatalf("retransmitted %+v, want %+v", rtx, lost)
	}
	st := h.t.stats()
	if st.NACKsReceived != 1 || st.Retransmits != 1 {
		t.Fatalf("nacks in %d retransmits %d, want 1 and 1", st.NACKsReceived, st.Retransmits)
	}
	// A NACK for a packet never sent and never received gets nothing.
	d.handleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1,
		Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost.seq + 500})}})
	if st := h.t.stats(); st.Retransmits != 1 || st.NACKsReceived != 2 {
		t.Fatalf("bogus NACK: %+v", st)
	}
}

func TestUpstreamLossGapStaysNACKable(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	d := h.subscribe(t, w, 1, true)
	h.feed(10, true)
	h.feed(11, false)
	h.feed(13, false) // 12 lost upstream
	waitFor(t, "packets", func() bool { return w.n.Load() == 3 })
	got := w.packets()
	if got[2].seq != got[1].seq+2 {
		t.Fatalf("upstream loss must stay a gap for the subscriber: %+v", got)
	}
	// The publisher's retransmission of 12 arrives late and is forwarded
	// into the gap.
	h.feed(12, false)
	waitFor(t, "late packet", func() bool { return w.n.Load() == 4 })
	if p := w.packets()[3]; p.origSeq != 12 || p.seq != got[1].seq+1 {
		t.Fatalf("late packet sent as %+v", p)
	}
	// And a subscriber NACK for it is served from the cache.
	d.handleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1,
		Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{got[1].seq + 1})}})
	waitFor(t, "retransmission", func() bool { return w.n.Load() == 5 })
	if p := w.packets()[4]; p.origSeq != 12 {
		t.Fatalf("retransmitted %+v", p)
	}
	if st := h.t.stats(); st.PacketsLost != 0 {
		t.Fatalf("lost %d after recovery", st.PacketsLost)
	}
}

func TestPLIBurstThrottled(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	d := h.subscribe(t, w, 1, true)
	var burst []rtcp.Packet
	for range 5 {
		burst = append(burst, &rtcp.PictureLossIndication{MediaSSRC: 1})
	}
	burst = append(burst, &rtcp.FullIntraRequest{MediaSSRC: 1})
	d.handleRTCP(burst)
	st := h.t.stats()
	if h.plis.Load() != 1 || st.PLIsSent != 1 || st.PLIsReceived != 6 {
		t.Fatalf("publisher got %d PLIs (stats sent %d received %d), want 1, 1, 6", h.plis.Load(), st.PLIsSent, st.PLIsReceived)
	}
}

func TestMuteStopsForwardingAndResumesAtKeyframe(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	h.subscribe(t, w, 1, true)
	h.feed(1, true)
	waitFor(t, "first", func() bool { return w.n.Load() == 1 })
	h.t.setMuted(true)
	for i := 2; i < 10; i++ {
		h.feed(uint16(i), false)
	}
	h.t.setMuted(false)
	h.feed(10, false)
	h.feed(11, true)
	waitFor(t, "resume", func() bool { return w.n.Load() == 2 })
	got := w.packets()
	if got[1].origSeq != 11 || got[1].seq != got[0].seq+1 {
		t.Fatalf("after unmute got %+v", got)
	}
	if h.t.stats().Muted {
		t.Fatal("muted flag stuck")
	}
}

func TestThrottle(t *testing.T) {
	base := time.Unix(100, 0)
	tests := []struct {
		name    string
		offsets []time.Duration
		want    []bool
	}{
		{"first passes", []time.Duration{0}, []bool{true}},
		{"burst", []time.Duration{0, 1, 2, 3}, []bool{true, false, false, false}},
		{"after interval", []time.Duration{0, 499 * time.Millisecond, 500 * time.Millisecond}, []bool{true, false, true}},
		{"window restarts from last allowed", []time.Duration{0, 600 * time.Millisecond, 900 * time.Millisecond, 1100 * time.Millisecond}, []bool{true, true, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := throttle{interval: 500 * time.Millisecond}
			for i, off := range tc.offsets {
				if got := th.allow(base.Add(off)); got != tc.want[i] {
					t.Fatalf("call %d at +%v: %v, want %v", i, off, got, tc.want[i])
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string
	}{
		{"defaults ok", func(*Config) {}, ""},
		{"udp port", func(c *Config) { c.UDPPort = 70000 }, "sfu.udp_port"},
		{"same ports", func(c *Config) { c.TCPPort = c.UDPPort }, "sfu.tcp_port"},
		{"bind", func(c *Config) { c.BindAddress = "nope" }, "sfu.bind_address"},
		{"public ip", func(c *Config) { c.PublicIPs = []string{"1.2.3"} }, "sfu.public_ips"},
		{"candidate type", func(c *Config) { c.NAT1To1CandidateType = "relay" }, "sfu.nat_1to1_candidate_type"},
		{"cidr", func(c *Config) { c.CIDRs = []string{"10.0.0.0"} }, "sfu.cidrs"},
		{"queue vs cache", func(c *Config) { c.SubscriberQueue = 300 }, "sfu.subscriber_queue"},
		{"pli", func(c *Config) { c.PLIInterval = -1 }, "sfu.pli_interval"},
		{"tcp cap", func(c *Config) { c.TCPUnauthenticatedPerAddr = 0 }, "sfu.tcp_unauthenticated_per_addr"},
		{"first stun", func(c *Config) { c.TCPFirstSTUNTimeout = 100 * time.Millisecond }, "sfu.tcp_first_stun_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !contains(err.Error(), tc.key) {
				t.Fatalf("error %v does not name %s", err, tc.key)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// FuzzForward feeds arbitrary datagrams (as a publisher could send) through
// the forwarding path: parse, cache, key-frame check, queue and the
// writer's header rewrite and padding handling. It must never panic.
func FuzzForward(f *testing.F) {
	f.Add(vp8Packet(1, true))
	padded := vp8Packet(2, false)
	padded[0] |= 0x20 // padding flag; last byte is the pad length
	f.Add(padded)
	f.Add([]byte{0xa0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0x00, 0xff})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h := newHarness(t, DefaultConfig())
		d := h.subscribe(t, nil, 7, false)
		d.bind.Store(&binding{ssrc: 7, pt: 100, writer: marshalWriter{t}})
		d.needKeyframe.Store(false)
		h.t.handlePacket(pkt, &h.hdr, time.Now())
		buf := make([]byte, 1500)
		var hdr rtp.Header
		for {
			select {
			case op := <-d.q.ch:
				d.q.send(op, buf, &hdr)
			default:
				return
			}
		}
	})
}

// marshalWriter serialises like pion's SRTP writer and checks the result
// re-parses with the rewritten header.
type marshalWriter struct{ t *testing.T }

func (w marshalWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	buf := make([]byte, h.MarshalSize()+len(payload)+int(h.PaddingSize))
	n, err := rtp.MarshalPacketTo(buf, h, payload) //nolint:staticcheck // the call pion's SRTP writer makes
	if err != nil {
		w.t.Fatalf("marshal: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		w.t.Fatalf("forwarded packet does not parse: %v", err)
	}
	if p.SSRC != 7 || p.PayloadType != 100 || len(p.Payload) != len(payload) {
		w.t.Fatalf("forwarded %+v", p.Header)
	}
	return n, nil
}

func (marshalWriter) Write(b []byte) (int, error) { return len(b), nil }

func TestUfragMatches(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:x\r\n"
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		c    webrtc.ICECandidateInit
		want bool
	}{
		{"no ufrag info", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host"}, true},
		{"same ufrag attribute", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host ufrag abcd"}, true},
		{"next generation attribute", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host ufrag efgh"}, false},
		{"usernameFragment field", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", UsernameFragment: str("abcd")}, true},
		{"usernameFragment mismatch", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", UsernameFragment: str("zzzz")}, false},
		{"empty end-of-candidates", webrtc.ICECandidateInit{Candidate: ""}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ufragMatches(tc.c, sdp); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Packets reach a subscriber only once its connection is up (pion drops
// earlier writes silently), and then video starts at a key frame.
func TestNothingForwardedBeforeSubscriberConnects(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	w := &fakeWriter{}
	d := h.subscribe(t, w, 1, true)
	d.sub.subReady.Store(false)
	h.feed(0, true)
	h.feed(1, false)
	time.Sleep(20 * time.Millisecond)
	if n := w.n.Load(); n != 0 {
		t.Fatalf("%d packets written before the connection was up", n)
	}
	d.sub.subReady.Store(true)
	h.feed(2, false)
	h.feed(3, true)
	h.feed(4, false)
	waitFor(t, "packets", func() bool { return w.n.Load() == 2 })
	got := w.packets()
	if !got[0].key || got[0].origSeq != 3 || got[1].origSeq != 4 || got[1].seq != got[0].seq+1 {
		t.Fatalf("got %+v", got)
	}
}
