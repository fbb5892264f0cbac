package simulcast

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

const frameInterval = time.Second / 30

// gen produces one layer's packets as a browser would: its own sequence
// numbers, timestamps (90 kHz), 15-bit PictureIDs and TL0PICIDX, a few
// packets per frame with the marker on the last.
type gen struct {
	layer   Layer
	seq     uint16
	ts      uint32
	pid     uint16
	tl0     uint8
	perFrm  int
	keyAt   time.Time // send a key frame at the first frame from then
	stopped bool
	// temporal: frames carry VP8 temporal layers in libwebrtc's L1T3
	// pattern (see l1t3); n counts frames since the last key frame.
	temporal bool
	n        int
}

func newGen(l Layer, seq uint16, ts uint32, pid uint16) *gen {
	return &gen{layer: l, seq: seq, ts: ts, pid: pid & 0x7fff, tl0: uint8(seq), perFrm: 1 << l}
}

// frame returns the next frame's packets, a key frame if asked.
func (g *gen) frame(now time.Time, key bool) []Packet {
	n := g.perFrm
	if key {
		n *= 3
	}
	var tl l1t3Frame
	if g.temporal {
		if key {
			g.n = 0
		}
		tl = l1t3[g.n%len(l1t3)]
		g.n++
		if tl.tid == 0 {
			g.tl0++ // the index of the newest base frame
		}
	}
	pkts := make([]Packet, n)
	for i := range pkts {
		pkts[i] = Packet{
			Layer: g.layer, Seq: g.seq, Timestamp: g.ts, Marker: i == n-1, Keyframe: key && i == 0,
			Arrival: now, HasPictureID: true, PictureID: g.pid, HasTL0PICIDX: true, TL0PICIDX: g.tl0,
			HasTID: g.temporal, TID: tl.tid, LayerSync: tl.sync, FrameStart: i == 0,
		}
		g.seq++
	}
	g.ts += 3000
	g.pid = (g.pid + 1) & 0x7fff
	if !g.temporal {
		g.tl0++
	}
	return pkts
}

// sent is one packet as the subscriber receives it.
type sent struct {
	layer  Layer
	in     uint16
	seq    uint16
	ts     uint32
	pid    uint16
	tl0    uint8
	marker bool
	key    bool
	at     time.Time
	tid    uint8
	sync   bool
}

func apply(p *Packet, r Result) sent {
	return sent{
		layer: p.Layer, in: p.Seq, seq: r.Seq, ts: r.Map.Timestamp(p.Timestamp), pid: r.Map.PictureID(p.PictureID),
		tl0: r.Map.TL0PICIDX(p.TL0PICIDX), marker: p.Marker, key: p.Keyframe, at: p.Arrival,
		tid: p.TID, sync: p.LayerSync,
	}
}

// sim runs a publisher of several layers into one switcher on the
// bubble's clock. The publisher answers a key frame request after 50 ms.
type sim struct {
	t    *testing.T
	sw   *Switcher
	gens []*gen
	out  []sent
	reqs []Layer
	// keyOn answers a request for a layer with a key frame on another
	// (the asked layer's own was lost).
	keyOn map[Layer]Layer
}

func newSim(t *testing.T, layers int) *sim {
	s := &sim{t: t, sw: NewSwitcher(Config{ClockRate: 90000})}
	for l := range layers {
		s.gens = append(s.gens, newGen(Layer(l), uint16(1000*(l+1)), uint32(50000*(l+1)), uint16(300*(l+1))))
	}
	return s
}

func (s *sim) handle(p *Packet, r Result) {
	if r.Forward {
		s.out = append(s.out, apply(p, r))
	}
	s.ask(r.Keyframe, p.Arrival)
}

func (s *sim) ask(l Layer, now time.Time) {
	if l == None {
		return
	}
	s.reqs = append(s.reqs, l)
	if k, ok := s.keyOn[l]; ok {
		l = k
	}
	if g := s.gens[l]; g.keyAt.IsZero() {
		g.keyAt = now.Add(50 * time.Millisecond)
	}
}

// run plays d of real time at 30 frames per second.
func (s *sim) run(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(frameInterval)
		now := time.Now()
		for _, g := range s.gens {
			if g.stopped {
				continue
			}
			key := !g.keyAt.IsZero() && !now.Before(g.keyAt)
			if key {
				g.keyAt = time.Time{}
			}
			for _, p := range g.frame(now, key) {
				s.handle(&p, s.sw.Push(&p))
			}
		}
		s.ask(s.sw.Tick(now), now)
	}
}

// checkContinuous asserts what the subscriber's decoder relies on: no
// gap and no reuse in sequence numbers, timestamps that never go back
// and change only between frames, PictureIDs and TL0PICIDX that step by
// one per frame, and a key frame at the start and after every layer
// change.
func checkContinuous(t *testing.T, out []sent) {
	t.Helper()
	for i, p := range out {
		if i == 0 {
			if !p.key {
				t.Fatalf("stream starts with %+v, not a key frame", p)
			}
			continue
		}
		q := out[i-1]
		if p.seq != q.seq+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.seq, q.seq)
		}
		if p.layer != q.layer && !p.key {
			t.Fatalf("packet %d: layer %d -> %d without a key frame", i, q.layer, p.layer)
		}
		newFrame := p.layer != q.layer || p.ts != q.ts
		if !newFrame {
			if p.pid != q.pid || p.tl0 != q.tl0 {
				t.Fatalf("packet %d: pid/tl0 changed inside a frame: %+v after %+v", i, p, q)
			}
			continue
		}
		if d := int32(p.ts - q.ts); d <= 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, p.ts, q.ts)
		}
		if p.pid != (q.pid+1)&0x7fff || p.tl0 != q.tl0+1 {
			t.Fatalf("packet %d: pid %d tl0 %d after pid %d tl0 %d", i, p.pid, p.tl0, q.pid, q.tl0)
		}
	}
}

// firstOf is when the first packet of layer l was forwarded (zero if
// none was).
func firstOf(out []sent, l Layer) time.Time {
	for _, p := range out {
		if p.layer == l {
			return p.at
		}
	}
	return time.Time{}
}

func layersOf(out []sent) []Layer {
	var ls []Layer
	for _, p := range out {
		if len(ls) == 0 || ls[len(ls)-1] != p.layer {
			ls = append(ls, p.layer)
		}
	}
	return ls
}

func TestSingleLayerIsTransparent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 1)
		s.sw.SetTarget(0)
		s.run(time.Second)
		if len(s.out) == 0 {
			t.Fatal("nothing forwarded")
		}
		checkContinuous(t, s.out)
		for _, p := range s.out {
			if p.seq != p.in {
				t.Fatalf("first stretch not forwarded unchanged: %+v", p)
			}
		}
		if s.reqs[0] != 0 {
			t.Fatalf("no key frame request at start: %v", s.reqs)
		}
	})
}

func TestSwitchUpAndDownAtKeyframes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 3)
		s.sw.SetTarget(0)
		s.run(500 * time.Millisecond)
		s.sw.SetTarget(2)
		s.run(500 * time.Millisecond)
		s.sw.SetTarget(1)
		s.run(500 * time.Millisecond)
		checkContinuous(t, s.out)
		if got := layersOf(s.out); len(got) != 3 || got[0] != 0 || got[1] != 2 || got[2] != 1 {
			t.Fatalf("layers forwarded: %v", got)
		}
		if s.sw.Current() != 1 || s.sw.Switches() != 3 {
			t.Fatalf("current %d after %d switches", s.sw.Current(), s.sw.Switches())
		}
	})
}

func TestSwitchTimestampFollowsWallClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := NewSwitcher(Config{ClockRate: 90000})
		q, f := newGen(0, 100, 1_000_000, 10), newGen(2, 60000, 4_000_000_000, 32760)
		sw.SetTarget(0)
		var last sent
		for _, p := range q.frame(time.Now(), true) {
			if r := sw.Push(&p); r.Forward {
				last = apply(&p, r)
			}
		}
		sw.SetTarget(2)
		time.Sleep(40 * time.Millisecond)
		pk := f.frame(time.Now(), false)
		if r := sw.Push(&pk[0]); r.Forward || r.Keyframe != 2 {
			t.Fatalf("delta frame of the target: %+v", r)
		}
		time.Sleep(25 * time.Millisecond)
		pk = f.frame(time.Now(), true)
		r := sw.Push(&pk[0])
		if !r.Forward {
			t.Fatal("key frame of the target not forwarded")
		}
		got := apply(&pk[0], r)
		if got.seq != last.seq+1 {
			t.Fatalf("seq %d after %d", got.seq, last.seq)
		}
		if d := got.ts - last.ts; d != 65*90 {
			t.Fatalf("timestamp advanced %d, want %d (65 ms)", d, 65*90)
		}
		if got.pid != last.pid+1 || got.tl0 != last.tl0+1 {
			t.Fatalf("pid %d tl0 %d after %d %d", got.pid, got.tl0, last.pid, last.tl0)
		}
	})
}

func TestLateAndReorderedPackets(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(1)
	h, q := newGen(1, 500, 0, 0), newGen(0, 7000, 0, 0)
	h.perFrm, q.perFrm = 3, 3
	hOld := h.frame(now, false) // before the switch
	q.frame(now, false)
	hKey := h.frame(now, true) // 9 packets, seq 503..511
	// Start on h; packet 504 arrives after 505.
	push := func(p Packet) Result { return sw.Push(&p) }
	r := push(hKey[0])
	if !r.Forward {
		t.Fatal("key frame not forwarded")
	}
	base := r.Seq - hKey[0].Seq
	push(hKey[2])
	if r := push(hKey[1]); !r.Forward || r.Seq != hKey[1].Seq+base {
		t.Fatalf("reordered packet: %+v, want seq %d", r, hKey[1].Seq+base)
	}
	if r := push(hOld[1]); r.Forward {
		t.Fatalf("packet from before the switch forwarded: %+v", r)
	}
	// Switch to q, then late packets of h are dropped.
	sw.SetTarget(0)
	for _, p := range hKey[3:] {
		push(p)
	}
	qKey := q.frame(now, true)
	if r := push(qKey[0]); !r.Forward || r.Seq != hKey[8].Seq+base+1 {
		t.Fatalf("switch to q: %+v", r)
	}
	if r := push(hKey[4]); r.Forward {
		t.Fatalf("late packet of the old layer forwarded: %+v", r)
	}
}

func TestPauseFinishesTheFrameAndResumesAtKeyframe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := NewSwitcher(Config{ClockRate: 90000})
		f := newGen(2, 0, 0, 0)
		sw.SetTarget(2)
		var out []sent
		push := func(pkts []Packet) (reqs []Layer) {
			for _, p := range pkts {
				r := sw.Push(&p)
				if r.Forward {
					out = append(out, apply(&p, r))
				}
				if r.Keyframe != None {
					reqs = append(reqs, r.Keyframe)
				}
			}
			return reqs
		}
		push(f.frame(time.Now(), true))
		fr := f.frame(time.Now(), false) // 4 packets
		push(fr[:2])
		sw.SetTarget(None)
		push(fr[2:])
		n := len(out)
		if !out[n-1].marker {
			t.Fatal("pause cut the frame short")
		}
		for range 30 {
			time.Sleep(frameInterval)
			if reqs := push(f.frame(time.Now(), false)); len(reqs) != 0 {
				t.Fatalf("paused switcher asked for key frames: %v", reqs)
			}
		}
		if len(out) != n || sw.Current() != None {
			t.Fatalf("sent %d packets while paused", len(out)-n)
		}
		sw.SetTarget(2)
		time.Sleep(frameInterval)
		if reqs := push(f.frame(time.Now(), false)); len(reqs) != 1 || reqs[0] != 2 {
			t.Fatalf("resume did not ask for a key frame: %v", reqs)
		}
		push(f.frame(time.Now(), true))
		checkContinuous(t, out)
		// The pause lasted 31 frame intervals of wall-clock time.
		if d := out[n].ts - out[n-1].ts; d < 30*3000 || d > 32*3000 {
			t.Fatalf("timestamp moved %d over a 1 s pause", d)
		}
	})
}

func TestDroppedGivesTheNumberBack(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	q := newGen(0, 0, 0, 0)
	q.perFrm = 2
	var last Result
	for _, p := range q.frame(now, true) {
		last = sw.Push(&p)
	}
	pk := q.frame(now, false)
	r := sw.Push(&pk[0])
	sw.Dropped(r)
	if r2 := sw.Push(&pk[1]); r2.Forward || r2.Keyframe != 0 {
		t.Fatalf("after a drop, a delta packet: %+v", r2)
	}
	pk = q.frame(now.Add(time.Second), true)
	r3 := sw.Push(&pk[0])
	if !r3.Forward || r3.Seq != last.Seq+1 {
		t.Fatalf("resumed at %+v, want seq %d", r3, last.Seq+1)
	}
	if _, _, _, ok := sw.Lookup(r.Seq + 1); ok {
		t.Fatal("lookup answers for a number never sent")
	}
}

func TestLookup(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	q, h := newGen(0, 100, 0, 0), newGen(1, 9000, 0, 0)
	var outQ []Result
	for _, p := range q.frame(now, true) { // 100..102
		outQ = append(outQ, sw.Push(&p))
	}
	q.seq++                                 // 103 lost upstream
	for _, p := range q.frame(now, false) { // 104
		sw.Push(&p)
	}
	sw.SetTarget(1)
	hk := h.frame(now, true) // 9002.. (6 packets)
	rh := sw.Push(&hk[0])
	for _, p := range hk[1:] {
		sw.Push(&p)
	}
	tests := []struct {
		out   uint16
		layer Layer
		in    uint16
		ok    bool
	}{
		{outQ[1].Seq, 0, 101, true},
		{103, 0, 103, true}, // lost upstream: still mapped, so the NACK reaches the cache
		{104, 0, 104, true},
		{rh.Seq, 1, hk[0].Seq, true},
		{rh.Seq + 5, 1, hk[5].Seq, true},
		{rh.Seq + 6, None, 0, false}, // not sent yet
		{99, None, 0, false},         // before anything was sent
	}
	for _, tc := range tests {
		l, in, m, ok := sw.Lookup(tc.out)
		if ok != tc.ok || l != tc.layer || in != tc.in {
			t.Errorf("Lookup(%d) = %d %d %v, want %d %d %v", tc.out, l, in, ok, tc.layer, tc.in, tc.ok)
		}
		if ok && m.Seq(in) != tc.out {
			t.Errorf("Lookup(%d): mapping gives %d", tc.out, m.Seq(in))
		}
	}
}

// The publisher's uplink shrinks and the browser stops its top layer:
// the subscriber must be on the best remaining layer within a second,
// and move back up when the layer returns.
func TestFallbackWhenLayerStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 3)
		s.sw.SetTarget(2)
		s.run(time.Second)
		if s.sw.Current() != 2 {
			t.Fatalf("not on layer 2 after 1 s: %d", s.sw.Current())
		}
		s.gens[2].stopped = true
		stop := time.Now()
		s.run(time.Second)
		moved := firstOf(s.out, 1)
		if moved.IsZero() || moved.Sub(stop) > time.Second {
			t.Fatalf("moved to layer 1 %v after the top layer stopped (layers %v)", moved.Sub(stop), layersOf(s.out))
		}
		t.Logf("moved to layer 1 %v after the top layer stopped", moved.Sub(stop))
		s.gens[2].stopped = false
		s.run(time.Second)
		s.gens[1].stopped, s.gens[2].stopped = true, true
		s.run(2 * time.Second)
		checkContinuous(t, s.out)
		if got := layersOf(s.out); len(got) != 4 || got[1] != 1 || got[2] != 2 || got[3] != 0 {
			t.Fatalf("layers forwarded: %v", got)
		}
	})
}

// A publisher answers the request for layer 1, after its top layer
// stopped, with key frames on layer 0 only (layer 1's lost on a capped
// uplink): once layer 1's is overdue the subscriber gets layer 0's
// rather than a frozen picture, and moves up when layer 1's comes.
func TestStopgapWhileWantedKeyframeOverdue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 3)
		s.sw.SetTarget(2)
		s.run(time.Second)
		s.gens[2].stopped = true
		s.keyOn = map[Layer]Layer{1: 0}
		stop := time.Now()
		s.run(time.Second)
		moved := firstOf(s.out, 0)
		// The top layer counts as gone after LayerTimeout, layer 1's key
		// frame as overdue KeyframeInterval after that; the layer 0 key
		// frame answering the first request came before, the one
		// answering the retry (KeyframeInterval later) is taken.
		if want := DefaultLayerTimeout + 2*DefaultKeyframeInterval + 100*time.Millisecond; moved.IsZero() || moved.Sub(stop) > want {
			t.Fatalf("on layer 0 %v after the top layer stopped, want within %v (layers %v)", moved.Sub(stop), want, layersOf(s.out))
		}
		if s.sw.Target() != 2 || s.sw.Current() != 0 {
			t.Fatalf("target %d, current %d", s.sw.Target(), s.sw.Current())
		}
		s.keyOn = nil
		s.run(time.Second)
		checkContinuous(t, s.out)
		if got := layersOf(s.out); len(got) != 3 || got[0] != 2 || got[1] != 0 || got[2] != 1 {
			t.Fatalf("layers forwarded: %v, want [2 0 1]", got)
		}
	})
}

// silencedSim is a sim of three layers whose subscriber received layer 2
// for a second, after which every layer went silent (a browser's pacer
// under a new uplink cap).
func silencedSim(t *testing.T) *sim {
	s := newSim(t, 3)
	s.sw.SetTarget(2)
	s.run(time.Second)
	for _, g := range s.gens {
		g.stopped = true
	}
	s.reqs = nil
	return s
}

// After a second of silence on every layer, layer 1 comes back alone
// for 100 ms (and becomes the one wanted), its key frames lost, then
// layer 0: the frozen subscriber takes layer 0's first key frame,
// however recently layer 1 became the one wanted.
func TestStopgapAfterEveryLayerWentSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := silencedSim(t)
		s.run(time.Second)
		s.keyOn = map[Layer]Layer{1: 0}
		s.gens[1].stopped = false
		s.run(100 * time.Millisecond)
		s.gens[0].stopped = false
		back := time.Now()
		s.run(time.Second)
		// Layer 0's first frame is a key frame: asked for during the
		// silence, and again for layer 1.
		if moved := firstOf(s.out, 0); moved.IsZero() || moved.Sub(back) > frameInterval {
			t.Fatalf("on layer 0 %v after it came back, want its first frame (layers %v)", moved.Sub(back), layersOf(s.out))
		}
		checkContinuous(t, s.out)
	})
}

// Every layer goes silent, then the lowest comes back: its key frame was
// asked for once during the silence, so the subscriber has a picture
// from its first frame. A publisher that stays silent is asked once.
func TestSilentPublisherAskedForLowestKeyframe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := silencedSim(t)
		s.run(time.Second)
		if !slices.Equal(s.reqs, []Layer{0}) {
			t.Fatalf("key frame requests %v while every layer was silent for 1 s, want one for layer 0", s.reqs)
		}
		s.gens[0].stopped = false
		back := time.Now()
		s.run(500 * time.Millisecond)
		if moved := firstOf(s.out, 0); moved.IsZero() || moved.Sub(back) > frameInterval {
			t.Fatalf("on layer 0 %v after it came back, want its first frame (layers %v)", moved.Sub(back), layersOf(s.out))
		}
		checkContinuous(t, s.out)

		for _, g := range s.gens {
			g.stopped = true
		}
		s.reqs = nil
		s.run(5 * time.Second)
		if !slices.Equal(s.reqs, []Layer{0}) {
			t.Fatalf("key frame requests %v to a publisher silent for 5 s, want one for layer 0", s.reqs)
		}
	})
}

// While a switch waits for a key frame, requests repeat at most every
// KeyframeInterval per layer, and stop when the switch is done.
func TestKeyframeRequestsThrottledAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := NewSwitcher(Config{ClockRate: 90000})
		q, f := newGen(0, 0, 0, 0), newGen(2, 0, 0, 0)
		sw.SetTarget(0)
		for _, p := range q.frame(time.Now(), true) {
			sw.Push(&p)
		}
		sw.SetTarget(2)
		var asked []time.Duration
		start := time.Now()
		for range 30 { // 1 s; the publisher ignores the requests
			time.Sleep(frameInterval)
			for _, g := range []*gen{q, f} {
				for _, p := range g.frame(time.Now(), false) {
					if r := sw.Push(&p); r.Keyframe != None {
						if r.Keyframe != 2 {
							t.Fatalf("request for layer %d", r.Keyframe)
						}
						asked = append(asked, time.Since(start))
					}
				}
			}
			if l := sw.Tick(time.Now()); l != None {
				asked = append(asked, time.Since(start))
			}
		}
		// Packets come every 33 ms, so a retry goes out with the first
		// packet at least 300 ms after the previous request.
		if len(asked) != 3 || asked[0] > frameInterval {
			t.Fatalf("requests at %v, want 3 in 1 s starting at once", asked)
		}
		for i := 1; i < len(asked); i++ {
			if d := asked[i] - asked[i-1]; d < DefaultKeyframeInterval || d > DefaultKeyframeInterval+frameInterval {
				t.Fatalf("requests %v apart", d)
			}
		}
		for _, p := range f.frame(time.Now(), true) {
			sw.Push(&p)
		}
		for range 30 { // 1 s more of both layers
			time.Sleep(frameInterval)
			for _, g := range []*gen{q, f} {
				for _, p := range g.frame(time.Now(), false) {
					if r := sw.Push(&p); r.Keyframe != None {
						t.Fatalf("request for layer %d after the switch", r.Keyframe)
					}
				}
			}
		}
		if l := sw.Tick(time.Now()); l != None || sw.Current() != 2 {
			t.Fatalf("after the switch: request %d, current %d", l, sw.Current())
		}
	})
}

func TestForwardDoesNotAllocate(t *testing.T) {
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(1)
	now := time.Unix(1000, 0)
	key := Packet{Layer: 1, Seq: 1, Keyframe: true, Arrival: now, HasPictureID: true}
	sw.Push(&key)
	p := Packet{Layer: 1, Seq: 1, Arrival: now, HasPictureID: true, HasTL0PICIDX: true}
	other := Packet{Layer: 0, Seq: 1, Arrival: now}
	n := testing.AllocsPerRun(1000, func() {
		p.Seq++
		p.Timestamp += 3000
		if r := sw.Push(&p); !r.Forward {
			t.Fatal("not forwarded")
		}
		other.Seq++
		sw.Push(&other)
		sw.Lookup(p.Seq - 10)
	})
	if n != 0 {
		t.Fatalf("%v allocations per forwarded packet", n)
	}
}

func BenchmarkPushForward(b *testing.B) {
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(2)
	now := time.Now()
	key := Packet{Layer: 2, Seq: 1, Keyframe: true, Arrival: now, HasPictureID: true}
	sw.Push(&key)
	p := Packet{Layer: 2, Seq: 1, Arrival: now, HasPictureID: true, HasTL0PICIDX: true}
	b.ReportAllocs()
	for b.Loop() {
		p.Seq++
		sw.Push(&p)
	}
}

// Packets of layers the subscriber does not receive cost a look at the
// arrival bookkeeping only.
func BenchmarkPushOtherLayer(b *testing.B) {
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(2)
	now := time.Now()
	key := Packet{Layer: 2, Seq: 1, Keyframe: true, Arrival: now}
	sw.Push(&key)
	p := Packet{Layer: 0, Seq: 1, Arrival: now}
	b.ReportAllocs()
	for b.Loop() {
		p.Seq++
		sw.Push(&p)
	}
}

// A whole call on one layer outlasts the 16-bit sequence space; NACK
// lookups must keep working for the recent half of it.
func TestLookupLongStretch(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	p := Packet{Layer: 0, Seq: 65000, Keyframe: true, Arrival: now}
	var r Result
	for range 70000 {
		r = sw.Push(&p)
		p.Seq++
		p.Keyframe = false
	}
	newest := r.Seq
	for _, back := range []uint16{0, 5, 30000, 0x7fff} {
		l, in, _, ok := sw.Lookup(newest - back)
		if !ok || l != 0 || in != newest-back {
			t.Errorf("Lookup(newest-%d) = %d %d %v", back, l, in, ok)
		}
	}
	for _, back := range []uint16{0x8000, 40000, 65535} {
		if _, _, _, ok := sw.Lookup(newest - back); ok {
			t.Errorf("Lookup(newest-%d) answered", back)
		}
	}
}

// After more switches than the switcher remembers, the oldest numbers
// are not answered (rather than answered wrongly).
func TestLookupForgetsOldStretches(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	gens := []*gen{newGen(0, 100, 0, 0), newGen(1, 20000, 0, 0)}
	var firsts []uint16
	for i := range numEpochs + 4 {
		l := Layer(i % 2)
		sw.SetTarget(l)
		for k, p := range gens[l].frame(now, true) {
			r := sw.Push(&p)
			if !r.Forward {
				t.Fatalf("switch %d not made", i)
			}
			if k == 0 {
				firsts = append(firsts, r.Seq)
			}
		}
	}
	for i, f := range firsts {
		l, _, _, ok := sw.Lookup(f)
		if recent := i >= len(firsts)-numEpochs; ok != recent || ok && l != Layer(i%2) {
			t.Errorf("stretch %d: Lookup = %d %v", i, l, ok)
		}
	}
}

func TestDroppedFirstPacketOfASwitch(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	q, h := newGen(0, 100, 0, 0), newGen(1, 5000, 0, 0)
	sw.SetTarget(0)
	var last Result
	for _, p := range q.frame(now, true) {
		last = sw.Push(&p)
	}
	sw.SetTarget(1)
	hk := h.frame(now, true)
	r := sw.Push(&hk[0])
	sw.Dropped(r)
	if _, _, _, ok := sw.Lookup(r.Seq); ok {
		t.Fatal("the given-back number still maps")
	}
	if l, in, _, ok := sw.Lookup(last.Seq); !ok || l != 0 || in != 102 {
		t.Fatalf("the stretch before: %d %d %v", l, in, ok)
	}
	hk = h.frame(now, true)
	if r2 := sw.Push(&hk[0]); !r2.Forward || r2.Seq != last.Seq+1 || r2.Map.Layer != 1 {
		t.Fatalf("after the drop: %+v", r2)
	}
}

// Late packets filled the numbers below the newest one: giving the
// newest number back would make the next switch reuse them.
func TestDroppedAfterLatePacketsKeepsNumbers(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	push := func(seq uint16, key bool) Result {
		return sw.Push(&Packet{Layer: 0, Seq: seq, Keyframe: key, Arrival: now})
	}
	push(4, true)
	r8 := push(8, false)
	for _, s := range []uint16{7, 6, 5} {
		if r := push(s, false); !r.Forward || r.Seq != s {
			t.Fatalf("late %d: %+v", s, r)
		}
	}
	sw.Dropped(r8)
	if r := push(9, false); !r.Forward || r.Seq != 9 {
		t.Fatalf("after a refused give-back: %+v", r)
	}
}

func TestPrimeStartsAtTheTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		gens := []*gen{newGen(0, 100, 1000, 10), newGen(1, 5000, 2000, 20), newGen(2, 9000, 3000, 30)}
		// A switcher that never heard of layers 1 and 2 falls back to
		// layer 0, the only one it saw, and asks for its key frame.
		cold := NewSwitcher(Config{ClockRate: 90000})
		cold.SetTarget(2)
		if r := cold.Push(&gens[0].frame(now, false)[0]); r.Keyframe != 0 {
			t.Fatalf("cold switcher asked for %d, want 0", r.Keyframe)
		}
		// A primed one knows the target is arriving and waits for it.
		sw := NewSwitcher(Config{ClockRate: 90000})
		sw.SetTarget(2)
		for i, g := range gens {
			sw.Prime(Layer(i), g.seq-1, now.Add(-5*time.Millisecond))
		}
		sw.Prime(2, 1, now.Add(-time.Hour)) // older: ignored
		var asked []Layer
		for _, g := range gens {
			for _, p := range g.frame(now, true) {
				r := sw.Push(&p)
				if r.Keyframe != None {
					asked = append(asked, r.Keyframe)
				}
				if r.Forward && p.Layer != 2 {
					t.Fatalf("forwarded layer %d", p.Layer)
				}
			}
		}
		if len(asked) != 1 || asked[0] != 2 {
			t.Fatalf("key frames asked %v, want [2]", asked)
		}
		if sw.Current() != 2 {
			t.Fatalf("current %d", sw.Current())
		}
	})
}

func TestResyncAsksAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGen(0, 100, 1000, 10)
		sw := NewSwitcher(Config{ClockRate: 90000})
		sw.SetTarget(0)
		if r := sw.Push(&g.frame(time.Now(), false)[0]); r.Keyframe != 0 {
			t.Fatalf("asked %d", r.Keyframe)
		}
		time.Sleep(frameInterval)
		if r := sw.Push(&g.frame(time.Now(), false)[0]); r.Keyframe != None {
			t.Fatalf("not throttled: asked %d", r.Keyframe)
		}
		sw.Resync()
		time.Sleep(frameInterval)
		if r := sw.Push(&g.frame(time.Now(), false)[0]); r.Keyframe != 0 {
			t.Fatalf("after Resync asked %d, want 0", r.Keyframe)
		}
	})
}

// TestCeilingBoundsTheFallbackUp: the target layer stops and only the
// layers above it arrive; with a ceiling at the target the subscriber
// waits for it (and its stream simply goes on when it resumes), with
// the ceiling raised it gets the lowest layer above.
func TestCeilingBoundsTheFallbackUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 3)
		s.sw.SetTarget(0)
		s.sw.SetCeiling(0)
		s.run(time.Second)
		s.gens[0].stopped = true
		s.run(time.Second)
		if got := layersOf(s.out); len(got) != 1 || got[0] != 0 {
			t.Fatalf("layers forwarded with the ceiling at the target: %v, want [0]", got)
		}
		s.gens[0].stopped = false
		s.run(time.Second)
		if got := layersOf(s.out); len(got) != 1 || s.sw.Current() != 0 {
			t.Fatalf("after the stall: layers %v, current %d; want layer 0 going on", got, s.sw.Current())
		}
		s.gens[0].stopped = true
		s.sw.SetCeiling(2)
		s.run(time.Second)
		checkContinuous(t, s.out)
		if got := layersOf(s.out); len(got) != 2 || got[1] != 1 {
			t.Fatalf("layers forwarded with the ceiling raised: %v, want [0 1]", got)
		}
	})
}

// TestHoldStopsTheCurrentLayerForALowerOne: with hold, a switch down
// finishes the current frame, sends nothing more of the old layer, and
// resumes at the lower layer's key frame; without it the old layer
// flows until that key frame.
func TestHoldStopsTheCurrentLayerForALowerOne(t *testing.T) {
	for _, hold := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			s := newSim(t, 3)
			s.sw.SetTarget(2)
			s.run(300 * time.Millisecond)
			if s.sw.Current() != 2 {
				t.Fatalf("current %d, want 2", s.sw.Current())
			}
			// The low layer's key frame comes 200 ms after the request.
			s.keyOn = map[Layer]Layer{}
			s.gens[0].keyAt = time.Now().Add(time.Hour) // no answer yet
			s.sw.SetHold(hold)
			s.sw.SetTarget(0)
			n := len(s.out)
			s.run(150 * time.Millisecond)
			var old int
			for _, p := range s.out[n:] {
				if p.layer == 2 {
					old++
				}
			}
			if hold && (old != 0 || s.sw.Current() != None) {
				t.Fatalf("hold: %d packets of the old layer after the switch down, current %d", old, s.sw.Current())
			}
			if !hold && (old == 0 || s.sw.Current() != 2) {
				t.Fatalf("no hold: %d packets of the old layer while waiting, current %d", old, s.sw.Current())
			}
			s.gens[0].keyAt = time.Now()
			s.run(100 * time.Millisecond)
			if s.sw.Current() != 0 {
				t.Fatalf("hold %v: current %d after the low layer's key frame, want 0", hold, s.sw.Current())
			}
			checkContinuous(t, s.out)
			if !s.out[n-1].marker {
				t.Fatal("the old layer's last frame was cut short")
			}
		})
	}
}
