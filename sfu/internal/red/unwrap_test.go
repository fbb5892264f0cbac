package red

import (
	"fmt"
	"testing"
)

// stream builds what a Chromium publisher sends: packet k carries frame k
// as primary and frames k-1..k-dist as redundancy, 960 ticks apart.
func stream(t testing.TB, dist int, k int) (uint16, uint32, []byte) {
	t.Helper()
	seq := uint16(65530 + k) // wraps
	ts := uint32(4294960000 + 960*k)
	var red []Block
	for d := dist; d >= 1; d-- {
		if k-d < 0 {
			continue
		}
		red = append(red, Block{PT: 111, Offset: uint16(960 * d), Payload: []byte(fmt.Sprint("f", k-d))})
	}
	buf, err := Pack(nil, red, 111, []byte(fmt.Sprint("f", k)))
	if err != nil {
		t.Fatal(err)
	}
	return seq, ts, buf
}

func TestUnwrap(t *testing.T) {
	tests := []struct {
		name    string
		dist    int
		arrive  []int    // frame indexes, in arrival order
		want    []string // payloads forwarded, in order
		wantRec uint64
	}{
		{name: "no loss", dist: 2, arrive: []int{0, 1, 2, 3}, want: []string{"f0", "f1", "f2", "f3"}},
		{name: "one lost, distance 1", dist: 1, arrive: []int{0, 1, 3, 4}, want: []string{"f0", "f1", "f2", "f3", "f4"}, wantRec: 1},
		{name: "two lost, distance 2", dist: 2, arrive: []int{0, 1, 4, 5}, want: []string{"f0", "f1", "f2", "f3", "f4", "f5"}, wantRec: 2},
		{name: "three lost, distance 2 (a hole stays)", dist: 2, arrive: []int{0, 4, 5}, want: []string{"f0", "f2", "f3", "f4", "f5"}, wantRec: 2},
		{name: "one lost, distance 2 (no duplicate of f1)", dist: 2, arrive: []int{0, 1, 3}, want: []string{"f0", "f1", "f2", "f3"}, wantRec: 1},
		{name: "late after recovery is dropped", dist: 1, arrive: []int{0, 2, 1, 3}, want: []string{"f0", "f1", "f2", "f3"}, wantRec: 1},
		{name: "late not recovered is forwarded", dist: 1, arrive: []int{0, 3, 1, 4}, want: []string{"f0", "f2", "f3", "f1", "f4"}, wantRec: 1},
		{name: "duplicate dropped", dist: 2, arrive: []int{0, 1, 1, 2}, want: []string{"f0", "f1", "f2"}},
		{name: "first packet recovers nothing", dist: 2, arrive: []int{5, 6}, want: []string{"f5", "f6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u Unwrapper
			var got []string
			out := make([]Packet, 0, MaxRecover+1)
			for _, k := range tc.arrive {
				seq, ts, buf := stream(t, tc.dist, k)
				var err error
				out, err = u.Unwrap(out[:0], seq, ts, buf)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range out {
					// Every packet keeps the frame's own seq and timestamp.
					var f int
					if _, err := fmt.Sscanf(string(p.Payload), "f%d", &f); err != nil {
						t.Fatal(err)
					}
					ws, wts, _ := stream(t, tc.dist, f)
					if p.Seq != ws || p.Timestamp != wts || p.PT != 111 || p.Recovered != (f != k) {
						t.Errorf("%s: seq %d ts %d rec %v, want %d %d", p.Payload, p.Seq, p.Timestamp, p.Recovered, ws, wts)
					}
					got = append(got, string(p.Payload))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("forwarded %v, want %v", got, tc.want)
			}
			if u.Recovered != tc.wantRec {
				t.Errorf("Recovered = %d, want %d", u.Recovered, tc.wantRec)
			}
		})
	}
}

func TestUnwrapSkippedRedundancy(t *testing.T) {
	// The sender left frame 2 out (too large): the only redundant block of
	// packet 3 is frame 1 (offset 1920), already forwarded: nothing to recover.
	var u Unwrapper
	out := make([]Packet, 0, MaxRecover+1)
	s1, t1, b1 := stream(t, 1, 1)
	out, _ = u.Unwrap(out[:0], s1, t1, b1)
	s3, t3, _ := stream(t, 1, 3)
	b3, _ := Pack(nil, []Block{{PT: 111, Offset: 1920, Payload: []byte("f1")}}, 111, []byte("f3"))
	out, _ = u.Unwrap(out[:0], s3, t3, b3)
	if len(out) != 1 || string(out[0].Payload) != "f3" {
		t.Fatalf("got %+v", out)
	}
}

func TestUnwrapRestartAndInvalid(t *testing.T) {
	var u Unwrapper
	out := make([]Packet, 0, MaxRecover+1)
	_, _, b := stream(t, 2, 3)
	out, _ = u.Unwrap(out[:0], 100, 1000, b)
	out, _ = u.Unwrap(out[:0], 5000, 900000, b) // a jump: no recovery
	if len(out) != 1 || u.Recovered != 0 {
		t.Fatalf("after a jump got %d packets", len(out))
	}
	if out, err := u.Unwrap(out[:0], 5001, 900960, []byte{0x80}); err == nil || len(out) != 0 {
		t.Fatalf("invalid payload: %v, %d packets", err, len(out))
	}
}

func BenchmarkParse(b *testing.B) {
	_, _, buf := stream(b, 2, 10)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Parse(buf)
		if err != nil {
			b.Fatal(err)
		}
		for it := p.Blocks(); it.Next(); {
			_ = it.Block()
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	type pkt struct {
		seq uint16
		ts  uint32
		buf []byte
	}
	var pkts []pkt
	for k := range 1000 {
		s, ts, buf := stream(b, 2, k)
		if k%10 == 5 { // 10% loss: exercises recovery
			continue
		}
		pkts = append(pkts, pkt{s, ts, buf})
	}
	var u Unwrapper
	out := make([]Packet, 0, MaxRecover+1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(pkts) {
			i, u = 0, Unwrapper{}
		}
		p := pkts[i]
		out, _ = u.Unwrap(out[:0], p.seq, p.ts, p.buf)
		i++
	}
}
