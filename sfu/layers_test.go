package sfu

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
	"github.com/parleyhq/parley/sfu/internal/vp8"
)

// Tests of the simulcast forwarding path without a network: a 3-layer
// publishedTrack fed by handleLayerPacket, downTracks with switchers.

type layerRecv struct {
	seq      uint16
	ts       uint32
	pid      uint16
	tl0      uint8
	key      bool
	layer    int
	layerSeq uint16
}

// layerWriter records what a subscriber of a simulcast track was sent.
type layerWriter struct {
	mu   sync.Mutex
	got  []layerRecv
	gate chan struct{}
	n    atomic.Int64
}

func (w *layerWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	var d vp8.Descriptor
	if err := d.Unmarshal(payload); err != nil || len(payload) < 9 {
		panic("not a layer packet")
	}
	w.mu.Lock()
	w.got = append(w.got, layerRecv{seq: h.SequenceNumber, ts: h.Timestamp, pid: d.PictureID, tl0: d.TL0PICIDX,
		key: d.Keyframe, layer: int(payload[6]), layerSeq: uint16(payload[7])<<8 | uint16(payload[8])})
	w.mu.Unlock()
	w.n.Add(1)
	return len(payload), nil
}

func (w *layerWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *layerWriter) packets() []layerRecv {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]layerRecv(nil), w.got...)
}

// layerFeeder sends one-packet frames on every layer, 10 ms apart, on
// an explicit clock.
type layerFeeder struct {
	h   *harness
	now time.Time
	i   int
	pli atomic.Pointer[[]uint32] // PLI SSRCs, in order
	mu  sync.Mutex
}

func newLayerFeeder(tb testing.TB, cfg Config) *layerFeeder {
	f := &layerFeeder{h: newSimulcastHarness(tb, cfg), now: time.Unix(1000, 0)}
	f.h.t.sendLayerPLI = func(ssrc uint32) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		old := f.plis()
		next := append(append([]uint32(nil), old...), ssrc)
		f.pli.Store(&next)
		return nil
	}
	return f
}

func (f *layerFeeder) plis() []uint32 {
	if p := f.pli.Load(); p != nil {
		return *p
	}
	return nil
}

// frame sends the next frame on the given layers; key layers send a key
// frame.
func (f *layerFeeder) frame(layers []int, key ...int) {
	for _, l := range layers {
		isKey := false
		for _, k := range key {
			isKey = isKey || k == l
		}
		seq := uint16(1000*l + f.i)
		f.h.t.handleLayerPacket(simulcast.Layer(l), vp8LayerPacket(l, seq, isKey), &f.h.hdr, f.now)
	}
	f.i++
	f.now = f.now.Add(10 * time.Millisecond)
}

var all3 = []int{0, 1, 2}

// checkLayerStream checks a subscriber's stream: consecutive sequence
// numbers, PictureIDs and TL0PICIDX, rising timestamps, and layer changes
// at key frames only.
func checkLayerStream(t *testing.T, got []layerRecv) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if b.seq != a.seq+1 || b.pid != (a.pid+1)&0x7fff || b.tl0 != a.tl0+1 || int32(b.ts-a.ts) <= 0 {
			t.Fatalf("packet %d: %+v after %+v", i, b, a)
		}
		if b.layer != a.layer && !b.key {
			t.Fatalf("packet %d: switch to layer %d at a delta frame", i, b.layer)
		}
	}
}

func TestLayerSwitching(t *testing.T) {
	f := newLayerFeeder(t, DefaultConfig())
	w := &layerWriter{}
	f.frame(all3) // before anyone subscribes
	d := f.h.subscribe(t, w, 1, true)
	f.frame(all3) // no key frame yet: nothing, and a PLI for the top layer only
	if p := f.plis(); len(p) != 1 || p[0] != 102 {
		t.Fatalf("PLIs %v, want one for the top layer (ssrc 102)", p)
	}
	keyAt := f.now
	f.frame(all3, 0, 1, 2)
	for range 5 {
		f.frame(all3)
	}
	waitFor(t, "top layer", func() bool { return w.n.Load() == 6 })
	if got := w.packets(); got[0].layer != 2 || !got[0].key {
		t.Fatalf("started with %+v", got[0])
	}
	// The admin API's view: the subscriber receives the top layer since
	// its key frame; every layer's media arrived with the last frame.
	st := f.h.t.stats()
	if rs := st.Receivers; len(rs) != 1 || rs[0].Layer != f.h.t.layers[2].rid || !rs[0].LayerSince.Equal(keyAt) {
		t.Fatalf("receivers %+v, want one on the top layer %q since %v", rs, f.h.t.layers[2].rid, keyAt)
	}
	lastFrame := f.now.Add(-10 * time.Millisecond)
	if len(st.Layers) != 3 {
		t.Fatalf("layers %+v, want 3", st.Layers)
	}
	for i, l := range st.Layers {
		if l.RID != f.h.t.layers[i].rid || !l.LastMediaTime.Equal(lastFrame) {
			t.Fatalf("layer %d: %+v, want rid %q, last media at %v", i, l, f.h.t.layers[i].rid, lastFrame)
		}
	}

	d.sw.SetTarget(0)
	f.frame(all3) // still layer 2, PLI for layer 0
	switchAt := f.now
	f.frame(all3, 0)
	f.frame(all3)
	waitFor(t, "layer 0", func() bool { return w.n.Load() == 9 })
	got := w.packets()
	if got[6].layer != 2 || got[7].layer != 0 || got[8].layer != 0 {
		t.Fatalf("switch down: %+v", got[6:])
	}
	if rs := f.h.t.stats().Receivers; len(rs) != 1 || rs[0].Layer != f.h.t.layers[0].rid || !rs[0].LayerSince.Equal(switchAt) {
		t.Fatalf("receivers %+v after the switch, want one on layer %q since %v", rs, f.h.t.layers[0].rid, switchAt)
	}
	if p := f.plis(); len(p) != 2 || p[1] != 100 {
		t.Fatalf("PLIs %v, want the second for layer 0 (ssrc 100)", p)
	}
	checkLayerStream(t, got)

	// A subscriber's PLI goes to the layer it receives (once the
	// track's throttle for that layer lets it).
	f.h.t.layers[0].pli.reset()
	d.handleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: 1}})
	if p := f.plis(); len(p) != 3 || p[2] != 100 {
		t.Fatalf("PLIs %v, want the third for layer 0", p)
	}

	// A NACK for a number sent before the switch, on the layer the
	// subscriber has left, is not answered (its decoder starts over at
	// layer 0's key frame); one for a number after it is.
	d.handleRTCP(nackOf(got[5].seq, got[8].seq))
	waitFor(t, "retransmission", func() bool { return w.n.Load() == 10 })
	if rtx := w.packets()[9:]; rtx[0] != got[8] {
		t.Fatalf("retransmitted %+v, want %+v", rtx, got[8])
	}
	if a := f.h.answers(t); a[rtxLeftLayer] != 1 || a[rtxResent] != 1 {
		t.Fatalf("NACK answers %v, want one resent and one of a left layer", a)
	}

	// Back on layer 2: a number of the first stretch on it is answered
	// from layer 2's cache with the mapping it was first sent with.
	d.sw.SetTarget(2)
	f.frame(all3)
	f.frame(all3, 2)
	waitFor(t, "layer 2 again", func() bool { return w.n.Load() == 13 })
	if got := w.packets(); got[12].layer != 2 || !got[12].key {
		t.Fatalf("back up: %+v", got[10:])
	}
	d.handleRTCP(nackOf(got[5].seq))
	waitFor(t, "retransmission of the first stretch", func() bool { return w.n.Load() == 14 })
	if rtx := w.packets()[13:]; rtx[0] != got[5] {
		t.Fatalf("retransmitted %+v, want %+v", rtx, got[5])
	}
}

func TestLayerFallbackWhenTopStops(t *testing.T) {
	f := newLayerFeeder(t, DefaultConfig())
	w := &layerWriter{}
	f.frame(all3)
	f.h.subscribe(t, w, 1, true)
	f.frame(all3, 0, 1, 2)
	f.frame(all3)
	// Layer 2 stops; after LayerTimeout the next key frame of layer 1
	// is taken.
	for range 60 { // 600 ms
		f.frame([]int{0, 1})
	}
	f.frame([]int{0, 1}, 1)
	f.frame([]int{0, 1})
	waitFor(t, "layer 1", func() bool { return w.n.Load() == 4 })
	got := w.packets()
	if got[2].layer != 1 || !got[2].key {
		t.Fatalf("fallback: %+v", got)
	}
	checkLayerStream(t, got)
}

func TestLayerNothingBeforeConnectedAndQueueFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SubscriberQueue = 4
	f := newLayerFeeder(t, cfg)
	w := &layerWriter{gate: make(chan struct{})}
	f.frame(all3)
	d := f.h.subscribe(t, w, 1, true)
	d.sub.subReady.Store(false)
	f.frame(all3, 0, 1, 2)
	f.frame(all3)
	if n := len(d.q.ch); n != 0 || len(f.plis()) != 0 {
		t.Fatalf("%d queued, PLIs %v before the connection was up", n, f.plis())
	}
	d.sub.subReady.Store(true)
	f.frame(all3) // delta frame: wait, ask for a key frame
	if len(f.plis()) != 1 {
		t.Fatalf("PLIs %v", f.plis())
	}
	f.frame(all3, 2)
	// The writer is stuck: one packet in its hands, 4 queued, then full.
	for range 10 {
		f.frame(all3)
	}
	if st := f.h.t.stats(); st.Drops[DropQueueFull] == 0 {
		t.Fatalf("drops %v", st.Drops)
	}
	close(w.gate)
	waitFor(t, "queue drained", func() bool { return len(d.q.ch) == 0 })
	for i := range 5 {
		if i == 3 {
			f.frame(all3, 2)
		} else {
			f.frame(all3)
		}
	}
	waitFor(t, "resumed", func() bool {
		p := w.packets()
		return len(p) > 0 && p[len(p)-1].layerSeq == uint16(2000+f.i-1)
	})
	got := w.packets()
	// No hole: the packets that did not fit were given back.
	checkLayerStream(t, got)
	// Before the stall: what the writer held and what the queue took (4
	// or 5, depending on when the writer picked up the first); after it:
	// the key frame and the packet after it.
	if n := len(got); n < 4+2 || n > 5+2 || !got[n-2].key || got[n-2].layerSeq != uint16(2000+f.i-2) {
		t.Fatalf("got %+v", got)
	}
}

func TestSetLayerClamps(t *testing.T) {
	f := newLayerFeeder(t, DefaultConfig())
	d := f.h.subscribe(t, &layerWriter{}, 1, false)
	p := d.sub
	p.down = map[string]*downTrack{"TR_s": d}
	for _, c := range []struct{ in, want int }{{0, 0}, {1, 1}, {2, 2}, {9, 2}, {-1, -1}, {-5, -1}} {
		if err := p.SetLayer("TR_s", c.in); err != nil {
			t.Fatal(err)
		}
		if got := int(d.sw.Target()); got != c.want {
			t.Fatalf("SetLayer(%d): target %d, want %d", c.in, got, c.want)
		}
	}
	if err := p.SetLayer("TR_x", 0); err == nil {
		t.Fatal("unknown track accepted")
	}
}

// TestBelowWantedTime: between two selection rounds, a visible tile that
// receives a lower layer than it wants counts as time below the wanted
// layer; one that receives what it wants does not.
func TestBelowWantedTime(t *testing.T) {
	f := newLayerFeeder(t, DefaultConfig())
	w := &layerWriter{}
	d := f.h.subscribe(t, w, 1, true)
	f.frame(all3, 0, 1, 2)
	waitFor(t, "the top layer", func() bool { return d.sw.Current() == 2 })
	below := func() float64 {
		var m dto.Metric
		if err := f.h.s.m.belowWanted.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	// The harness's subscriber is bare; selection needs its SFU, its
	// downTracks and a logger.
	p := d.sub
	p.s, p.log, p.down = f.h.s, slog.New(slog.DiscardHandler), map[string]*downTrack{f.h.t.info.SID: d}
	sel := simulcast.NewSelector(simulcast.SelectorConfig{})
	var st selectState
	now := f.now
	st.run(p, sel, now)
	st.run(p, sel, now.Add(500*time.Millisecond))
	if got := below(); got != 0 {
		t.Fatalf("%v s below the wanted layer while receiving the top one", got)
	}
	// Down to the low layer (as after a bandwidth drop): the untiled
	// tile still wants the top one.
	d.sw.SetTarget(0)
	f.frame(all3, 0)
	waitFor(t, "the low layer", func() bool { return d.sw.Current() == 0 })
	st.run(p, sel, now.Add(1000*time.Millisecond))
	if got := below(); got != 0.5 {
		t.Fatalf("%v s below the wanted layer, want the 0.5 s since the last round", got)
	}
}

// A layer's bitrate for the layer choice counts its new media only:
// Chrome's bandwidth probes repeat recent packets of its lowest layer
// (on RTX, handed over by pion as that layer's packets) at megabits a
// second, and counted they made 320x180 look costlier than 1280x720 (lab
// scenario 1), so subscribers with bandwidth to spare were held at the
// lowest layer.
func TestLayerBitrateLeavesOutRepeats(t *testing.T) {
	f := newLayerFeeder(t, Config{})
	for range 150 { // 1.5 s of one-packet frames on every layer
		f.frame(all3)
		// The layer-0 packet just sent, repeated three times.
		seq := uint16(f.i - 1)
		for range 3 {
			f.h.t.handleLayerPacket(0, vp8LayerPacket(0, seq, false), &f.h.hdr, f.now)
		}
	}
	f.h.t.statsMu.Lock()
	q, h := f.h.t.layers[0].bitrate, f.h.t.layers[1].bitrate
	f.h.t.statsMu.Unlock()
	if h == 0 || q > 1.1*h {
		t.Fatalf("layer q measured %.0f bit/s with its repeats, layer h (the same packets without) %.0f: repeats counted", q, h)
	}
}
