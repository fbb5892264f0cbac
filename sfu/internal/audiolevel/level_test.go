package audiolevel

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestParseRead(t *testing.T) {
	for _, tc := range []struct {
		in           []byte
		level        uint8
		voice, found bool
	}{
		{nil, Silent, false, false},
		{[]byte{0x80 | 30}, 30, true, true},
		{[]byte{127}, 127, false, true},
		{[]byte{0}, 0, false, true},
		{[]byte{0x80 | 45, 0xff}, 45, true, true}, // padding after the byte
	} {
		l, v, ok := Parse(tc.in)
		if l != tc.level || v != tc.voice || ok != tc.found {
			t.Errorf("Parse(%x) = %d %v %v", tc.in, l, v, ok)
		}
	}
	var h rtp.Header
	if err := h.SetExtension(3, []byte{0x80 | 33}); err != nil {
		t.Fatal(err)
	}
	if l, v, ok := Read(&h, 3); l != 33 || !v || !ok {
		t.Errorf("Read id 3 = %d %v %v", l, v, ok)
	}
	if _, _, ok := Read(&h, 4); ok {
		t.Error("Read of another id found a level")
	}
	if _, _, ok := Read(&h, 0); ok {
		t.Error("Read with id 0 (not negotiated) found a level")
	}
}

func TestSmoother(t *testing.T) {
	base := time.Unix(1000, 0)
	s := Smoother{Tau: 300 * time.Millisecond}
	if s.DBov(base) != Silent {
		t.Fatal("new smoother not silent")
	}
	at := base
	for range 100 { // 2 s at -30 dBov
		at = at.Add(frame)
		s.Update(at, 30)
	}
	if d := s.DBov(at); math.Abs(d-30) > 0.1 {
		t.Fatalf("steady -30 dBov smoothed to %.2f", d)
	}
	// A single loud frame barely moves it; ten (200 ms) move it a lot
	// less than their own level: energy averaging, not a peak meter.
	q := Smoother{Tau: 300 * time.Millisecond}
	for range 50 {
		at = at.Add(frame)
		q.Update(at, 90)
	}
	for range 10 {
		at = at.Add(frame)
		q.Update(at, 20)
	}
	if d := q.DBov(at); d < 21 || d > 26 {
		t.Errorf("200 ms burst at -20 over -90: %.1f dBov", d)
	}
	// DTX: 1 s without packets decays as silence: 980 ms / 300 ms * 4.34 = 14.2 dB.
	late := at.Add(time.Second)
	if d := q.DBov(late) - q.DBov(at); d < 13 || d > 15 {
		t.Errorf("1 s without packets decayed by %.1f dB", d)
	}
	// A packet after a long gap counts as one frame, not the whole gap.
	q.Update(at.Add(10*time.Second), 20)
	if d := q.DBov(at.Add(10 * time.Second)); d < 30 {
		t.Errorf("one frame after 10 s of DTX smoothed to %.1f", d)
	}
	if Loudness(0) != 1 || Loudness(127) != 0 || Loudness(200) != 0 {
		t.Error("Loudness bounds")
	}
}

func BenchmarkReadSmooth(b *testing.B) {
	var h rtp.Header
	if err := h.SetExtension(1, []byte{0x80 | 40}); err != nil {
		b.Fatal(err)
	}
	_ = h.SetExtension(3, []byte{1, 2, 3}) // another extension first in line
	s := Smoother{Tau: 300 * time.Millisecond}
	at := time.Unix(1000, 0)
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(frame)
		l, _, ok := Read(&h, 1)
		if ok {
			s.Update(at, l)
		}
	}
}

// BenchmarkSourceObserve is the forwarding path's per-packet work for
// the speaker selection: read the level from the header extension and
// feed it with the packet's arrival and RTP timestamp (Source.ObserveRTP).
func BenchmarkSourceObserve(b *testing.B) {
	r := NewRoom(Config{})
	src := r.Add("a")
	var h rtp.Header
	if err := h.SetExtension(1, []byte{0x80 | 40}); err != nil {
		b.Fatal(err)
	}
	at := time.Unix(1000, 0)
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(frame)
		h.Timestamp += 960
		if l, _, ok := Read(&h, 1); ok {
			src.ObserveRTP(at, 1, h.Timestamp, 48000, l)
		}
	}
}
