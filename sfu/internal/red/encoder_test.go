package red

import (
	"fmt"
	"testing"
)

func TestEncoderThroughUnwrapper(t *testing.T) {
	enc := Encoder{Distance: 2}
	var u Unwrapper
	var got []string
	out := make([]Packet, 0, MaxRecover+1)
	for k := range 20 {
		seq, ts := uint16(65530+k), uint32(960*k)
		payload := []byte(fmt.Sprint("f", k))
		if k == 7 {
			payload = make([]byte, MaxLength+1) // too large to be redundant
		}
		buf := enc.Encode(nil, ts, 111, payload)
		if k == 3 || k == 4 || k == 8 || k == 12 { // lost
			continue
		}
		out, _ = u.Unwrap(out[:0], seq, ts, buf)
		for _, p := range out {
			if p.Seq != uint16(65530+int(p.Timestamp/960)) {
				t.Errorf("seq %d with ts %d", p.Seq, p.Timestamp)
			}
			got = append(got, fmt.Sprint(p.Timestamp/960))
		}
	}
	// 3 and 4 from packet 5's redundancy; 8 from 9's; 12 from 13's.
	want := "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19]"
	if fmt.Sprint(got) != want {
		t.Errorf("forwarded %v", got)
	}
	// Frame 7 was too large: packet 8 (lost) and 9 carry no copy of it.
	p, _ := Parse(enc.Encode(nil, 960*20, 111, []byte("x")))
	if p.Redundant() != 2 {
		t.Errorf("%d redundant blocks", p.Redundant())
	}
}

func TestEncoderAllocs(t *testing.T) {
	var enc Encoder
	enc.Distance = 2
	dst := make([]byte, 0, 1500)
	payload := make([]byte, 120)
	ts := uint32(0)
	for range 10 { // warm the history buffers
		ts += 960
		enc.Encode(dst[:0], ts, 111, payload)
	}
	if n := testing.AllocsPerRun(100, func() {
		ts += 960
		dst = enc.Encode(dst[:0], ts, 111, payload)
	}); n != 0 {
		t.Errorf("%v allocs per Encode", n)
	}
}

// FuzzUnwrap: whatever the arrival order and payloads, no sequence number
// is forwarded twice within the tracking window, and every payload is a
// slice of the input.
func FuzzUnwrap(f *testing.F) {
	f.Add([]byte{0, 1, 3, 2, 6, 5, 9}, uint8(2))
	f.Add([]byte{0, 200, 1, 100}, uint8(1))
	f.Fuzz(func(t *testing.T, order []byte, dist uint8) {
		enc := Encoder{Distance: int(dist % 3)}
		var frames [][]byte
		for k := range 256 {
			frames = append(frames, enc.Encode(nil, uint32(960*k), 111, []byte{byte(k), byte(k >> 8)}))
		}
		var u Unwrapper
		seen := map[uint16]bool{}
		out := make([]Packet, 0, MaxRecover+1)
		for _, k := range order {
			out, _ = u.Unwrap(out[:0], uint16(k), uint32(960*int(k)), frames[k])
			for _, p := range out {
				if seen[p.Seq] {
					t.Fatalf("seq %d forwarded twice (order %v)", p.Seq, order)
				}
				seen[p.Seq] = true
				if int(p.Payload[0]) != int(p.Seq) || p.Timestamp != 960*uint32(p.Seq) {
					t.Fatalf("seq %d carries frame %d ts %d", p.Seq, p.Payload[0], p.Timestamp)
				}
			}
		}
	})
}
