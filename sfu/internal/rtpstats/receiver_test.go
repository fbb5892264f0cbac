package rtpstats

import (
	"math"
	"testing"
	"time"
)

func TestLoss(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []uint16
		expected uint64
		lost     uint64
	}{
		{"no loss", []uint16{1, 2, 3, 4}, 4, 0},
		{"gap", []uint16{1, 2, 5, 6}, 6, 2},
		{"wraparound gap", []uint16{65534, 65535, 1, 2}, 5, 1},
		{"reordered recovers", []uint16{1, 3, 2, 4}, 4, 0},
		{"late retransmit fills gap", []uint16{10, 11, 13, 14, 12}, 5, 0},
		{"duplicate does not go negative", []uint16{1, 1, 1, 2}, 2, 0},
		{"two wraps", append(span(0, 65536), span(0, 65536)...), 131072, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReceiver(90000)
			now := time.Unix(0, 0)
			for _, s := range tc.seqs {
				r.Update(s, 0, now)
			}
			if r.Expected() != tc.expected || r.Lost() != tc.lost {
				t.Fatalf("expected=%d lost=%d, want %d %d", r.Expected(), r.Lost(), tc.expected, tc.lost)
			}
		})
	}
}

func span(start uint16, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = start + uint16(i)
	}
	return out
}

func TestFractionLost(t *testing.T) {
	r := NewReceiver(90000)
	now := time.Unix(0, 0)
	for s := uint16(0); s < 10; s++ {
		r.Update(s, 0, now)
	}
	if f := r.CloseInterval(); f != 0 {
		t.Fatalf("first interval fraction %v, want 0", f)
	}
	// Next interval: 10..19 sent, 15 and 16 lost.
	for s := uint16(10); s < 20; s++ {
		if s == 15 || s == 16 {
			continue
		}
		r.Update(s, 0, now)
	}
	if f := r.CloseInterval(); math.Abs(f-0.2) > 1e-9 {
		t.Fatalf("fraction %v, want 0.2", f)
	}
}

func TestJitter(t *testing.T) {
	const clock = 90000
	tests := []struct {
		name string
		// arrival offsets in ms for packets sent every 20 ms
		arrivals []float64
		wantMs   float64
	}{
		{"constant delay", []float64{0, 20, 40, 60, 80}, 0},
		// One packet 10 ms late: D=10 then D=10 (back on time), J =
		// 10/16 then 10/16 + (10-10/16)/16.
		{"one late packet", []float64{0, 30, 40}, 10.0/16 + (10-10.0/16)/16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReceiver(clock)
			base := time.Unix(1000, 0)
			for i, a := range tc.arrivals {
				ts := uint32(4000000000) + uint32(i*20*clock/1000) // crosses 2^32
				r.Update(uint16(i), ts, base.Add(time.Duration(a*float64(time.Millisecond))))
			}
			if math.Abs(r.JitterMs()-tc.wantMs) > 1e-6 {
				t.Fatalf("jitter %v ms, want %v", r.JitterMs(), tc.wantMs)
			}
		})
	}
}

func TestJitterConverges(t *testing.T) {
	// Arrival alternates between 0 and 4 ms late: |D| = 4 ms every
	// packet, so jitter converges to 4 ms.
	r := NewReceiver(48000)
	base := time.Unix(0, 0)
	for i := range 500 {
		late := time.Duration(0)
		if i%2 == 1 {
			late = 4 * time.Millisecond
		}
		r.Update(uint16(i), uint32(i*960), base.Add(time.Duration(i)*20*time.Millisecond+late))
	}
	if math.Abs(r.JitterMs()-4) > 0.01 {
		t.Fatalf("jitter %v ms, want ~4", r.JitterMs())
	}
}
