package red

import (
	"bytes"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		err  error
		want []Block
	}{
		{name: "empty", in: nil, err: ErrEmpty},
		{name: "primary only", in: []byte{111, 1, 2, 3}, want: []Block{{PT: 111, Payload: []byte{1, 2, 3}}}},
		{name: "primary empty", in: []byte{111}, want: []Block{{PT: 111, Payload: []byte{}}}},
		{
			name: "one redundant",
			// F=1 PT=111, offset 960 = 0b00001111000000, length 2
			in: []byte{0x80 | 111, 960 >> 6, (960 & 0x3f) << 2, 2, 111, 9, 8, 7},
			want: []Block{
				{PT: 111, Offset: 960, Payload: []byte{9, 8}},
				{PT: 111, Payload: []byte{7}},
			},
		},
		{
			name: "two redundant, max offset and a 300-byte length",
			in: append([]byte{
				0x80 | 100, 0xff, 0xfc | 1, 44, // offset 16383, length 300
				0x80 | 101, 0, 4, 0, // offset 1, length 0
				102,
			}, bytes.Repeat([]byte{5}, 301)...),
			want: []Block{
				{PT: 100, Offset: MaxOffset, Payload: bytes.Repeat([]byte{5}, 300)},
				{PT: 101, Offset: 1, Payload: []byte{}},
				{PT: 102, Payload: []byte{5}},
			},
		},
		{name: "header cut", in: []byte{0x80 | 111, 0, 4}, err: ErrTruncated},
		{name: "no primary header", in: []byte{0x80 | 111, 0, 4, 0}, err: ErrTruncated},
		{name: "length too long", in: []byte{0x80 | 111, 0, 4, 3, 111, 1, 2}, err: ErrLength},
		{name: "length exact, empty primary", in: []byte{0x80 | 111, 0, 4, 2, 111, 1, 2}, want: []Block{
			{PT: 111, Offset: 1, Payload: []byte{1, 2}}, {PT: 111, Payload: []byte{}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				if p.Len() != 0 {
					t.Fatalf("failed parse has %d blocks", p.Len())
				}
				return
			}
			var got []Block
			for it := p.Blocks(); it.Next(); {
				got = append(got, it.Block())
			}
			if len(got) != len(tc.want) || p.Len() != len(tc.want) || p.Redundant() != len(tc.want)-1 {
				t.Fatalf("got %d blocks (Len %d), want %d", len(got), p.Len(), len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.PT != w.PT || g.Offset != w.Offset || !bytes.Equal(g.Payload, w.Payload) {
					t.Errorf("block %d = %+v, want %+v", i, g, w)
				}
			}
			if pr := p.Primary(); !bytes.Equal(pr.Payload, tc.want[len(tc.want)-1].Payload) {
				t.Errorf("primary = %v", pr.Payload)
			}
		})
	}
}

func TestPackRoundTrip(t *testing.T) {
	red := []Block{
		{PT: 111, Offset: 1920, Payload: []byte("two back")},
		{PT: 111, Offset: 960, Payload: []byte("one back")},
	}
	buf, err := Pack(nil, red, 111, []byte("now"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for it := p.Blocks(); it.Next(); i++ {
		b := it.Block()
		if i < 2 && (b.Offset != red[i].Offset || string(b.Payload) != string(red[i].Payload)) {
			t.Errorf("block %d = %+v", i, b)
		}
		if i == 2 && (b.Offset != 0 || string(b.Payload) != "now" || b.PT != 111) {
			t.Errorf("primary = %+v", b)
		}
	}
	if i != 3 {
		t.Fatalf("%d blocks", i)
	}
}

func TestPackRefuses(t *testing.T) {
	for _, b := range []Block{
		{Offset: MaxOffset + 1},
		{Payload: make([]byte, MaxLength+1)},
	} {
		dst := []byte{1}
		out, err := Pack(dst, []Block{b}, 111, nil)
		if !errors.Is(err, ErrTooLarge) || len(out) != 1 {
			t.Errorf("Pack(%d, %d bytes) = %v, %v", b.Offset, len(b.Payload), out, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{111, 1})
	f.Add([]byte{0x80 | 111, 960 >> 6, 0, 2, 111, 9, 8, 7})
	f.Add([]byte{0x80 | 111, 0, 4, 3, 111, 1, 2})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p.Len() != 0 {
				t.Fatal("error with blocks")
			}
			return
		}
		// The headers and every block's data account for the whole input.
		total, n := 0, 0
		for it := p.Blocks(); it.Next(); n++ {
			b := it.Block()
			total += len(b.Payload)
			if b.PT > 127 {
				t.Fatal("PT over 7 bits")
			}
			if n < p.Len()-1 && len(b.Payload) > MaxLength {
				t.Fatal("redundant block over 10 bits")
			}
			if n == p.Len()-1 && b.Offset != 0 {
				t.Fatal("primary with offset")
			}
		}
		hdr := 4*(n-1) + 1
		if n != p.Len() || n < 1 || total+hdr != len(data) {
			t.Fatalf("blocks %d/%d, %d bytes of data + %d of headers != %d", n, p.Len(), total, hdr, len(data))
		}
		// Re-packing the blocks gives the input back.
		var red []Block
		for it := p.Blocks(); it.Next(); {
			red = append(red, it.Block())
		}
		prim, red := red[len(red)-1], red[:len(red)-1]
		out, err := Pack(nil, red, prim.PT, prim.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("repack %x != %x", out, data)
		}
		// Unwrap never panics on a valid payload either.
		var u Unwrapper
		buf := make([]Packet, 0, MaxRecover+1)
		_, _ = u.Unwrap(buf, 10, 10000, data)
		_, _ = u.Unwrap(buf, 13, 20000, data)
	})
}
