package vp8

import (
	"bytes"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want Descriptor
		err  bool
	}{
		{"minimal key frame", []byte{0x10, 0x00}, Descriptor{Size: 1, PartitionStart: true, Keyframe: true}, false},
		{"minimal delta frame", []byte{0x10, 0x01}, Descriptor{Size: 1, PartitionStart: true}, false},
		{"continuation of key frame", []byte{0x00, 0x00}, Descriptor{Size: 1}, false},
		{"partition 1 is never a key frame start", []byte{0x11, 0x00}, Descriptor{Size: 1, PartitionStart: true, PartitionID: 1}, false},
		{"non-reference", []byte{0x20, 0x01}, Descriptor{Size: 1, NonReference: true}, false},
		{
			"15-bit picture id", []byte{0x90, 0x80, 0x81, 0x23, 0x00},
			Descriptor{Size: 4, PartitionStart: true, HasPictureID: true, PictureIDLong: true, PictureID: 0x0123, Keyframe: true, pidOff: 2}, false,
		},
		{
			"7-bit picture id, tl0, tid, keyidx", []byte{0x90, 0xf0, 0x05, 0x09, 0xa3, 0x01},
			Descriptor{
				Size: 5, PartitionStart: true, HasPictureID: true, PictureID: 5, HasTL0PICIDX: true, TL0PICIDX: 9,
				HasTID: true, TID: 2, LayerSync: true, HasKeyIdx: true, KeyIdx: 3, pidOff: 2, tl0Off: 3,
			}, false,
		},
		{
			"browser layout: 15-bit id, tl0, tid", []byte{0x90, 0xe0, 0xff, 0xff, 0x7f, 0x40, 0x9c},
			Descriptor{
				Size: 6, PartitionStart: true, HasPictureID: true, PictureIDLong: true, PictureID: 0x7fff,
				HasTL0PICIDX: true, TL0PICIDX: 0x7f, HasTID: true, TID: 1, Keyframe: true, pidOff: 2, tl0Off: 4,
			}, false,
		},
		{"keyidx only", []byte{0x80, 0x10, 0x1f, 0x00}, Descriptor{Size: 3, HasKeyIdx: true, KeyIdx: 0x1f}, false},
		{"empty", nil, Descriptor{}, true},
		{"X without extension byte", []byte{0x80}, Descriptor{}, true},
		{"I without picture id", []byte{0x80, 0x80}, Descriptor{}, true},
		{"15-bit id cut in half", []byte{0x80, 0x80, 0x81}, Descriptor{}, true},
		{"L without tl0", []byte{0x80, 0x40}, Descriptor{}, true},
		{"T without tid byte", []byte{0x80, 0x20}, Descriptor{}, true},
		{"descriptor with no frame byte", []byte{0x90, 0x80, 0x81, 0x23}, Descriptor{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Descriptor
			err := d.Unmarshal(tc.p)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if err == nil && d != tc.want {
				t.Fatalf("got  %+v\nwant %+v", d, tc.want)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	t.Run("15-bit id keeps its width and wraps at 2^15", func(t *testing.T) {
		p := []byte{0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, 0x9c, 0xaa}
		var d Descriptor
		if err := d.Unmarshal(p); err != nil {
			t.Fatal(err)
		}
		if !d.Rewrite(p, 0x8005, 0xfe) {
			t.Fatal("rewrite refused")
		}
		want := []byte{0x90, 0xe0, 0x80, 0x05, 0xfe, 0x40, 0x9c, 0xaa}
		if !bytes.Equal(p, want) {
			t.Fatalf("got % x, want % x", p, want)
		}
		if d.PictureID != 5 || d.TL0PICIDX != 0xfe {
			t.Fatalf("descriptor not updated: %+v", d)
		}
	})
	t.Run("7-bit id gets the low 7 bits", func(t *testing.T) {
		p := []byte{0x90, 0x80, 0x05, 0x00}
		var d Descriptor
		if err := d.Unmarshal(p); err != nil {
			t.Fatal(err)
		}
		d.Rewrite(p, 0x1234, 0)
		if p[2] != 0x34 || p[3] != 0x00 {
			t.Fatalf("got % x", p)
		}
	})
	t.Run("absent fields are not written", func(t *testing.T) {
		p := []byte{0x10, 0x00, 0x01}
		var d Descriptor
		if err := d.Unmarshal(p); err != nil {
			t.Fatal(err)
		}
		d.Rewrite(p, 77, 9)
		if !bytes.Equal(p, []byte{0x10, 0x00, 0x01}) {
			t.Fatalf("got % x", p)
		}
	})
	t.Run("shorter buffer is refused", func(t *testing.T) {
		var d Descriptor
		if err := d.Unmarshal([]byte{0x90, 0x80, 0x81, 0x23, 0x00}); err != nil {
			t.Fatal(err)
		}
		short := []byte{0x90, 0x80}
		if d.Rewrite(short, 1, 1) || !bytes.Equal(short, []byte{0x90, 0x80}) {
			t.Fatal("rewrote a buffer shorter than the descriptor")
		}
	})
}

func TestNoAllocs(t *testing.T) {
	p := []byte{0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, 0x9c, 0xaa}
	var d Descriptor
	n := testing.AllocsPerRun(100, func() {
		if d.Unmarshal(p) == nil {
			d.Rewrite(p, d.PictureID+1, d.TL0PICIDX+1)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per parse+rewrite", n)
	}
}

func BenchmarkUnmarshalRewrite(b *testing.B) {
	p := []byte{0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, 0x9c, 0xaa, 0, 0, 0, 0}
	var d Descriptor
	b.ReportAllocs()
	for b.Loop() {
		if d.Unmarshal(p) == nil {
			d.Rewrite(p, d.PictureID+1, d.TL0PICIDX+1)
		}
	}
}

// The payload comes from the network: parsing must never panic, and a
// rewrite must change only the PictureID and TL0PICIDX bytes, keep the
// descriptor's layout, and read back as written.
func FuzzRewriteRoundTrip(f *testing.F) {
	f.Add([]byte{0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, 0x9c}, uint16(0x7fff), uint8(0))
	f.Add([]byte{0x90, 0xf0, 0x05, 0x09, 0xa3, 0x01}, uint16(200), uint8(255))
	f.Add([]byte{0x10, 0x00}, uint16(1), uint8(1))
	f.Add([]byte{0x80, 0x80, 0x81}, uint16(1), uint8(1))
	f.Fuzz(func(t *testing.T, p []byte, pid uint16, tl0 uint8) {
		var d Descriptor
		if d.Unmarshal(p) != nil {
			return
		}
		orig := append([]byte(nil), p...)
		before := d
		if !d.Rewrite(p, pid, tl0) {
			t.Fatal("rewrite refused the payload it was parsed from")
		}
		var back Descriptor
		if err := back.Unmarshal(p); err != nil {
			t.Fatalf("rewritten payload does not parse: %v", err)
		}
		if back != d {
			t.Fatalf("read back %+v, descriptor says %+v", back, d)
		}
		wantPID, wantTL0 := before.PictureID, before.TL0PICIDX
		if before.HasPictureID {
			wantPID = pid & 0x7f
			if before.PictureIDLong {
				wantPID = pid & 0x7fff
			}
		}
		if before.HasTL0PICIDX {
			wantTL0 = tl0
		}
		if back.PictureID != wantPID || back.TL0PICIDX != wantTL0 {
			t.Fatalf("read back pid %d tl0 %d, want %d %d", back.PictureID, back.TL0PICIDX, wantPID, wantTL0)
		}
		back.PictureID, back.TL0PICIDX = before.PictureID, before.TL0PICIDX
		if back != before {
			t.Fatalf("layout changed: %+v -> %+v", before, back)
		}
		// Writing the original values back restores the original bytes.
		d.Rewrite(p, before.PictureID, before.TL0PICIDX)
		if !bytes.Equal(p, orig) {
			t.Fatalf("round trip: % x -> % x", orig, p)
		}
	})
}
