package simulcast

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// l1t3Frame is one frame of libwebrtc's three-layer VP8 pattern.
type l1t3Frame struct {
	tid  uint8
	sync bool
}

// l1t3 is libwebrtc's three-layer pattern: a base frame, a TID 2 frame
// and a TID 1 frame that refer only to it (Y), and a TID 2 frame that
// refers to both.
var l1t3 = []l1t3Frame{{0, false}, {2, true}, {1, true}, {2, false}} //nolint:gochecknoglobals // read-only table

// checkTemporal asserts what the receiver's VP8 reference finder relies
// on when frames are left out: no gap and no reuse in sequence numbers,
// PictureIDs one apart from frame to frame, and TL0PICIDX one up at each
// base frame and unchanged otherwise.
func checkTemporal(t *testing.T, out []sent) {
	t.Helper()
	if len(out) == 0 {
		t.Fatal("nothing forwarded")
	}
	for i := 1; i < len(out); i++ {
		p, q := out[i], out[i-1]
		if p.seq != q.seq+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.seq, q.seq)
		}
		if p.ts == q.ts && p.layer == q.layer {
			if p.pid != q.pid || p.tl0 != q.tl0 {
				t.Fatalf("packet %d: pid/tl0 changed inside a frame: %+v after %+v", i, p, q)
			}
			continue
		}
		if p.pid != (q.pid+1)&0x7fff {
			t.Fatalf("packet %d: pid %d after %d", i, p.pid, q.pid)
		}
		want := q.tl0
		if p.tid == 0 {
			want++
		}
		if p.layer == q.layer && p.tl0 != want {
			t.Fatalf("packet %d (tid %d): tl0 %d after %d", i, p.tid, p.tl0, q.tl0)
		}
	}
}

// frameTIDs is the temporal layer of each frame in out.
func frameTIDs(out []sent) []uint8 {
	var tids []uint8
	for i, p := range out {
		if i == 0 || p.ts != out[i-1].ts {
			tids = append(tids, p.tid)
		}
	}
	return tids
}

func temporalSim(t *testing.T) *sim {
	s := newSim(t, 2)
	for _, g := range s.gens {
		g.temporal = true
	}
	s.sw.SetTarget(1) // two packets a frame
	return s
}

func TestTemporalDownKeepsStreamContinuous(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := temporalSim(t)
		s.run(500 * time.Millisecond)
		full := len(frameTIDs(s.out))
		s.sw.SetTemporal(1)
		mark1 := len(s.out)
		s.run(TemporalStepDown)
		s.sw.SetTemporal(0)
		mark0 := len(s.out)
		s.run(time.Second)

		checkTemporal(t, s.out)
		half, quarter := frameTIDs(s.out[mark1:mark0]), frameTIDs(s.out[mark0:])
		if slices.Contains(half, 2) || !slices.Contains(half, 1) {
			t.Errorf("temporal target 1 forwarded TIDs %v", half)
		}
		if slices.ContainsFunc(quarter, func(tid uint8) bool { return tid != 0 }) {
			t.Errorf("temporal target 0 forwarded TIDs %v", quarter)
		}
		// 30 frames a second: 15 at TID 1, 7 or 8 at TID 0.
		if len(half) < 29 || len(half) > 31 || len(quarter) < 7 || len(quarter) > 8 || full < 10 {
			t.Errorf("frames: %d in 0.5 s at all layers, %d in 2 s at TID 1, %d in 1 s at TID 0", full, len(half), len(quarter))
		}
		if got := s.sw.Temporal(); got != 0 {
			t.Errorf("Temporal() = %d", got)
		}
		// Every number sent maps back to its packet, across the
		// many epochs the drops made.
		for _, p := range s.out[len(s.out)-40:] {
			if l, in, _, ok := s.sw.Lookup(p.seq); !ok || l != p.layer || in != p.in {
				t.Fatalf("Lookup(%d) = %d %d %v, sent layer %d seq %d", p.seq, l, in, ok, p.layer, p.in)
			}
		}
	})
}

// From every frame straight to the base layer, the frame rate halves
// first and halves again only TemporalStepDown later: a receiver counts
// a sudden quartering of the frame rate as a freeze.
func TestTemporalStepsDownOneLayerAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := temporalSim(t)
		s.run(500 * time.Millisecond)
		s.sw.SetTemporal(0)
		start, mark := time.Now(), len(s.out)
		s.run(3 * time.Second)
		var lastTID1 time.Time
		for _, p := range s.out[mark:] {
			if p.tid == 2 && p.at.Sub(start) > 100*time.Millisecond {
				t.Fatalf("TID 2 frame %v after the step down", p.at.Sub(start))
			}
			if p.tid == 1 {
				lastTID1 = p.at
			}
		}
		if d := lastTID1.Sub(start); d < TemporalStepDown-200*time.Millisecond || d > TemporalStepDown+200*time.Millisecond {
			t.Errorf("TID 1 frames until %v after the step down, want about %v", d, TemporalStepDown)
		}
		checkTemporal(t, s.out)
		if got := s.sw.Temporal(); got != 0 {
			t.Errorf("Temporal() = %d", got)
		}
	})
}

// pushFrames pushes n frames of g into sw (one per 33 ms from *now) and
// returns what was forwarded.
func pushFrames(sw *Switcher, g *gen, now *time.Time, n int, key bool) []sent {
	var out []sent
	for i := range n {
		*now = now.Add(frameInterval)
		for _, p := range g.frame(*now, key && i == 0) {
			if r := sw.Push(&p); r.Forward {
				out = append(out, apply(&p, r))
			}
		}
	}
	return out
}

// Going up waits for a frame the subscriber can decode: TID 1 at its
// next layer sync frame, TID 2 at its next one after that, not at the
// next frame of the layer (which may refer to frames never sent).
func TestTemporalUpWaitsForLayerSync(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	sw.SetTemporal(0)
	g := newGen(0, 100, 0, 0)
	g.temporal = true
	out := pushFrames(sw, g, &now, 7, true) // up to TID 1 Y; the next is TID 2 without Y
	if got := frameTIDs(out); !slices.Equal(got, []uint8{0, 0}) {
		t.Fatalf("TID 0 only: frames of TIDs %v", got)
	}
	sw.SetTemporal(AllTemporal)
	more := pushFrames(sw, g, &now, 10, false)
	// Pushed: 2, 0, 2Y (TID 1 not yet in sync), 1Y, 2 (no Y), 0, 2Y,
	// 1Y, 2, 0.
	if got, want := frameTIDs(more), []uint8{0, 1, 0, 2, 1, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("after SetTemporal(all): frames of TIDs %v, want %v", got, want)
	}
	checkTemporal(t, append(out, more...))
	if got := sw.Temporal(); got != 2 {
		t.Errorf("Temporal() = %d, want 2", got)
	}
}

// A key frame lets every layer through at once.
func TestTemporalUpAtKeyframe(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	sw.SetTemporal(0)
	g := newGen(0, 100, 0, 0)
	g.temporal = true
	out := pushFrames(sw, g, &now, 6, true)
	sw.SetTemporal(AllTemporal)
	out = append(out, pushFrames(sw, g, &now, 4, true)...)
	if got, want := frameTIDs(out), []uint8{0, 0, 0, 2, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("frames of TIDs %v, want %v", got, want)
	}
	checkTemporal(t, out)
}

// Packets lost upstream and repaired late fill the numbers kept for
// them; a late packet of a frame left out is left out too, and a NACK
// for its number is not answered.
func TestTemporalLatePackets(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(1)
	sw.SetTemporal(1)
	g := newGen(1, 100, 0, 0) // two packets a frame
	g.temporal = true
	var out []sent
	var held []Packet
	push := func(p Packet) {
		if r := sw.Push(&p); r.Forward {
			out = append(out, apply(&p, r))
		}
	}
	// Frames: 0 (key), 2Y (second packet lost), 1Y (second packet
	// lost), 2 (lost whole), 0, 2Y, 1Y.
	for i := range 7 {
		now = now.Add(frameInterval)
		for k, p := range g.frame(now, i == 0) {
			if (i == 1 || i == 2) && k == 1 || i == 3 {
				held = append(held, p)
				continue
			}
			push(p)
		}
	}
	holes := 0
	for i := 1; i < len(out); i++ {
		holes += int(out[i].seq - out[i-1].seq - 1)
	}
	// Numbers kept for: the 2Y frame's lost packet (its first was seen
	// and left out, but that was not known when the number was kept),
	// the 1Y frame's, the two of the lost frame.
	if holes != 4 {
		t.Fatalf("%d numbers kept for lost packets, want 4", holes)
	}
	for _, p := range held {
		push(p)
	}
	slices.SortFunc(out, func(a, b sent) int { return int(int16(a.seq - b.seq)) })
	// The lost 2Y packet stays a gap (its frame is left out); the rest
	// fills the stream: the 1Y frame's second packet and the lost TID 2
	// frame, a frame never seen, whose PictureID was kept.
	var gap uint16
	for i := 1; i < len(out); i++ {
		if d := out[i].seq - out[i-1].seq; d != 1 {
			if d != 2 || gap != 0 {
				t.Fatalf("seq %d after %d", out[i].seq, out[i-1].seq)
			}
			gap = out[i-1].seq + 1
		}
	}
	if gap == 0 {
		t.Fatal("the left-out frame's late packet was sent")
	}
	if _, _, _, ok := sw.Lookup(gap); ok {
		t.Errorf("Lookup(%d) answered for a packet left out", gap)
	}
	for _, p := range out {
		if l, in, _, ok := sw.Lookup(p.seq); !ok || l != p.layer || in != p.in {
			t.Errorf("Lookup(%d) = %d %d %v, sent %d %d", p.seq, l, in, ok, p.layer, p.in)
		}
	}
	// The frames sent: the key frame, 1Y, the late 2, 0 and 1Y, under
	// PictureIDs one apart.
	var pids []uint16
	for _, p := range out {
		if len(pids) == 0 || pids[len(pids)-1] != p.pid {
			pids = append(pids, p.pid)
		}
	}
	if want := []uint16{0, 1, 2, 3, 4}; !slices.Equal(pids, want) {
		t.Errorf("PictureIDs %v, want %v", pids, want)
	}
}

// Dropped gives the number of a packet back after frames were left out,
// and the stream goes on without a gap from the next key frame.
func TestTemporalDropped(t *testing.T) {
	now := time.Unix(1000, 0)
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(0)
	sw.SetTemporal(0)
	g := newGen(0, 100, 0, 0)
	g.temporal = true
	out := pushFrames(sw, g, &now, 4, true) // 0 key, 2Y, 1Y, 2: one frame sent
	n := len(out)
	now = now.Add(frameInterval)
	p := g.frame(now, false)[0] // TID 0, after three left out
	r := sw.Push(&p)
	if !r.Forward {
		t.Fatal("base frame not forwarded")
	}
	sw.Dropped(r)
	out = append(out, pushFrames(sw, g, &now, 5, true)...)
	checkTemporal(t, out)
	if out[n].seq != r.Seq {
		t.Errorf("after the drop: seq %d, want %d given back", out[n].seq, r.Seq)
	}
}
