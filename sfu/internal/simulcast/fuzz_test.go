package simulcast

import (
	"sync"
	"testing"
	"time"
)

type origin struct {
	layer Layer
	in    uint16
}

// FuzzSwitcher drives a switcher with arbitrary packets (reordered,
// lost, duplicated, any layer, key frames anywhere, any VP8 temporal
// layer and sync bit), target and temporal target changes, time jumps,
// drops and resyncs, and checks the promises the subscriber
// relies on: a sequence number is never used for two different packets,
// the newest number only moves forward, and Lookup names the packet
// that was sent under a number.
func FuzzSwitcher(f *testing.F) {
	f.Add([]byte{0x10, 0x00, 0x81, 0x05, 0x02, 0x21, 0x33, 0x90, 0xa1, 0x01, 0x44})
	f.Add([]byte{0x12, 0x80, 0x01, 0x01, 0xc0, 0x02, 0x80, 0x83, 0x30, 0x41, 0x01})
	f.Add([]byte{0x00, 0x01, 0xa8, 0x04, 0x60, 0x80, 0xa0, 0x06, 0xa0, 0x05, 0xb0, 0x05, 0xa0, 0x04, 0x80, 0x01, 0x60, 0x83, 0xa0, 0x05})
	f.Fuzz(func(t *testing.T, ops []byte) {
		sw := NewSwitcher(Config{ClockRate: 90000})
		now := time.Unix(1000, 0)
		var seq [MaxLayers]uint16
		sent := map[uint16]origin{}
		var last Result
		var newest, prevNewest uint16
		started, prevStarted := false, false
		lastNewest := false // last moved newest on
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			switch op >> 5 {
			case 0: // target
				sw.SetTarget(Layer(arg%5) - 1)
			case 1: // time passes
				now = now.Add(time.Duration(arg) * 10 * time.Millisecond)
			case 2:
				// Only the number of the newest packet, forwarded last,
				// is given back.
				sw.Dropped(last)
				if last.Forward && lastNewest {
					delete(sent, last.Seq)
					newest, started = prevNewest, prevStarted
				}
				last = Result{}
			case 3:
				if arg&0x80 != 0 {
					sw.SetTemporal(arg & 3)
				} else {
					sw.Resync()
				}
			default: // a packet
				l := Layer(op & 3)
				seq[l] += uint16((int8(arg) >> 2) % 8) // back up to 7, forward up to 7
				p := Packet{
					Layer: l, Seq: seq[l], Timestamp: uint32(seq[l]) * 1000, Marker: op&4 != 0,
					Keyframe: op&8 != 0, Arrival: now,
					HasTID: arg&0x40 == 0, TID: arg & 3, LayerSync: op&16 != 0, FrameStart: op&0x20 != 0,
					HasPictureID: true, PictureID: seq[l] / 2,
				}
				r := sw.Push(&p)
				if r.Keyframe < None || r.Keyframe >= MaxLayers {
					t.Fatalf("key frame request for layer %d", r.Keyframe)
				}
				if !r.Forward {
					continue
				}
				if r.Map.Layer != l || r.Map.Seq(p.Seq) != r.Seq {
					t.Fatalf("result %+v for %+v", r, p)
				}
				o := origin{l, p.Seq}
				if prev, ok := sent[r.Seq]; ok && prev != o {
					t.Fatalf("seq %d reused: %+v, then %+v", r.Seq, prev, o)
				}
				sent[r.Seq] = o
				lastNewest = !started || int16(r.Seq-newest) > 0
				if lastNewest {
					prevNewest, prevStarted = newest, started
					newest, started = r.Seq, true
				}
				last = r
			}
		}
		for out, o := range sent {
			if uint16(newest-out) >= maxEpochSpan {
				continue
			}
			if l, in, _, ok := sw.Lookup(out); ok && (l != o.layer || in != o.in) {
				t.Fatalf("Lookup(%d) = layer %d seq %d, sent layer %d seq %d", out, l, in, o.layer, o.in)
			}
		}
	})
}

// Each layer's read loop, the selector and the RTCP reader use one
// switcher at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	sw := NewSwitcher(Config{ClockRate: 90000})
	sw.SetTarget(2)
	var wg sync.WaitGroup
	for l := range Layer(3) {
		wg.Go(func() {
			g := newGen(l, uint16(l)*1000, 0, 0)
			for i := range 200 {
				for _, p := range g.frame(time.Now(), i%20 == 0) {
					if r := sw.Push(&p); r.Forward {
						sw.Lookup(r.Seq)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			sw.SetTarget(Layer(i % 3))
			sw.Tick(time.Now())
		}
	})
	wg.Wait()
}
