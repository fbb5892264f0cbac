package simulcast

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/sfu/internal/vp8"
)

// vp8Payload builds a payload as a browser sends it: descriptor with
// PictureID (15 or 7 bits), TL0PICIDX and TID, then a frame byte.
func vp8Payload(start, key, long bool, pid uint16, tl0 uint8) []byte {
	b0 := byte(0x80)
	if start {
		b0 |= 0x10
	}
	p := []byte{b0, 0xe0}
	if long {
		p = append(p, 0x80|byte(pid>>8), byte(pid))
	} else {
		p = append(p, byte(pid&0x7f))
	}
	p = append(p, tl0, 0x00)
	frame := byte(0x01)
	if key {
		frame = 0x00
	}
	return append(p, frame, 0xaa, 0xbb)
}

// The whole path a VP8 packet takes: parsed once on receipt, decided by
// the switcher, rewritten on the writer's copy. The subscriber must read
// PictureIDs and TL0PICIDXs that step by one per frame across switches,
// for 15-bit and 7-bit sources alike (7-bit modulo 128).
func TestVP8RewriteAcrossSwitches(t *testing.T) {
	for _, long := range []bool{true, false} {
		name := "15-bit"
		if !long {
			name = "7-bit"
		}
		t.Run(name, func(t *testing.T) {
			mask := uint16(0x7fff)
			if !long {
				mask = 0x7f
			}
			sw := NewSwitcher(Config{ClockRate: 90000})
			type layerState struct {
				seq  uint16
				pid  uint16
				tl0  uint8
				ts   uint32
				next bool // next frame is a key frame
			}
			ls := []*layerState{{seq: 10, pid: 32700, tl0: 250, next: true}, {seq: 5000, pid: 17, tl0: 3}}
			now := time.Unix(1000, 0)
			var gotPID []uint16
			var gotTL0 []uint8
			for frame := range 60 {
				now = now.Add(frameInterval)
				switch frame {
				case 20:
					sw.SetTarget(1)
					ls[1].next = true
				case 40:
					sw.SetTarget(0)
					ls[0].next = true
				}
				if frame == 0 {
					sw.SetTarget(0)
				}
				for l, g := range ls {
					key := g.next
					g.next = false
					for i := range 3 {
						payload := vp8Payload(i == 0, key, long, g.pid&mask, g.tl0)
						var d vp8.Descriptor
						if err := d.Unmarshal(payload); err != nil {
							t.Fatal(err)
						}
						p := Packet{Layer: Layer(l), Seq: g.seq, Timestamp: g.ts, Marker: i == 2, Arrival: now}
						p.SetVP8(&d)
						g.seq++
						r := sw.Push(&p)
						if !r.Forward {
							continue
						}
						cp := append([]byte(nil), payload...)
						if !r.Map.RewriteVP8(cp) {
							t.Fatal("rewrite failed")
						}
						var out vp8.Descriptor
						if err := out.Unmarshal(cp); err != nil {
							t.Fatal(err)
						}
						if out.PictureIDLong != long || out.Keyframe != d.Keyframe {
							t.Fatalf("rewrite changed the layout: %+v", out)
						}
						if i == 0 {
							gotPID = append(gotPID, out.PictureID)
							gotTL0 = append(gotTL0, out.TL0PICIDX)
						}
					}
					g.pid++
					g.tl0++
					g.ts += 3000
				}
			}
			// 60 frame times; at the switch up, layer 0's frame and layer
			// 1's key frame of the same instant both go out.
			if len(gotPID) != 61 {
				t.Fatalf("%d frames forwarded, want 61", len(gotPID))
			}
			for i := 1; i < len(gotPID); i++ {
				if gotPID[i] != (gotPID[i-1]+1)&mask || gotTL0[i] != gotTL0[i-1]+1 {
					t.Fatalf("frame %d: pid %d tl0 %d after %d %d", i, gotPID[i], gotTL0[i], gotPID[i-1], gotTL0[i-1])
				}
			}
		})
	}
}

func TestRewriteVP8Garbage(t *testing.T) {
	p := []byte{0x80}
	if (Mapping{PictureIDDelta: 3}).RewriteVP8(p) || p[0] != 0x80 {
		t.Fatal("rewrote a payload that does not parse")
	}
}

func TestRewriteVP8DoesNotAllocate(t *testing.T) {
	p := vp8Payload(true, false, true, 100, 7)
	m := Mapping{PictureIDDelta: 1, TL0PICIDXDelta: 1}
	if n := testing.AllocsPerRun(100, func() { m.RewriteVP8(p) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
