package packetcache

import (
	"bytes"
	"testing"
)

func pkt(seq uint16) []byte {
	return []byte{0x80, 96, byte(seq >> 8), byte(seq), 1, 2, 3, byte(seq)}
}

func TestCache(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		put     []uint16
		present []uint16
		absent  []uint16
	}{
		{"lookup", 16, []uint16{1, 2, 3}, []uint16{1, 2, 3}, []uint16{0, 4, 100}},
		{"wraparound", 16, []uint16{65533, 65534, 65535, 0, 1, 2}, []uint16{65533, 65535, 0, 2}, []uint16{3, 65532}},
		{"eviction", 16, seqRange(0, 40), seqRange(24, 16), []uint16{0, 8, 23}},
		{"eviction across wrap", 16, seqRange(65530, 30), seqRange(8, 16), []uint16{65530, 65535, 0, 1, 7}},
		{"out of order", 16, []uint16{10, 12, 11}, []uint16{10, 11, 12}, []uint16{13}},
		{"too old ignored", 16, []uint16{100, 80}, []uint16{100}, []uint16{80}},
		{"jump forgets", 16, []uint16{1, 2, 3, 500}, []uint16{500}, []uint16{1, 2, 3}},
		{"size rounds up", 20, seqRange(0, 32), seqRange(0, 32), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.size)
			for _, s := range tc.put {
				c.Put(s, pkt(s))
			}
			buf := make([]byte, MaxPacketSize)
			for _, s := range tc.present {
				n := c.Get(s, buf)
				if n == 0 || !bytes.Equal(buf[:n], pkt(s)) {
					t.Errorf("seq %d: got %x, want %x", s, buf[:n], pkt(s))
				}
				if !c.Has(s) {
					t.Errorf("seq %d: Has says absent", s)
				}
				if l := c.Len(s); l != len(pkt(s)) {
					t.Errorf("seq %d: Len %d, want %d", s, l, len(pkt(s)))
				}
			}
			for _, s := range tc.absent {
				if n := c.Get(s, buf); n != 0 {
					t.Errorf("seq %d: unexpectedly cached (%x)", s, buf[:n])
				}
				if c.Has(s) {
					t.Errorf("seq %d: Has says present", s)
				}
				if l := c.Len(s); l != 0 {
					t.Errorf("seq %d: Len %d, want 0", s, l)
				}
			}
		})
	}
}

func seqRange(start uint16, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = start + uint16(i)
	}
	return out
}

func TestCacheRejectsOversizeAndSmallDst(t *testing.T) {
	c := New(16)
	if c.Put(1, make([]byte, MaxPacketSize+1)) {
		t.Fatal("oversize packet stored")
	}
	c.Put(2, pkt(2))
	if n := c.Get(2, make([]byte, 3)); n != 0 {
		t.Fatalf("short dst: got %d bytes", n)
	}
}

func BenchmarkPutGet(b *testing.B) {
	c := New(1024)
	p := make([]byte, 1200)
	dst := make([]byte, MaxPacketSize)
	b.SetBytes(1200)
	for i := 0; b.Loop(); i++ {
		c.Put(uint16(i), p)
		c.Get(uint16(i), dst)
	}
}
