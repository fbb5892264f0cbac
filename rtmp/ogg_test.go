package rtmp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// oggPage builds one page; CRC is left zero (the reader does not check it).
func oggPage(flags byte, packets [][]byte, lastContinues bool) []byte {
	var lacing, body []byte
	for i, p := range packets {
		n := len(p)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		if !(lastContinues && i == len(packets)-1) {
			lacing = append(lacing, byte(n))
		}
		body = append(body, p...)
	}
	h := make([]byte, 27)
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint64(h[6:], 960)
	h[26] = byte(len(lacing))
	return append(append(h, lacing...), body...)
}

func TestOggReader(t *testing.T) {
	big := bytes.Repeat([]byte{0xfc}, 600)
	var stream []byte
	stream = append(stream, oggPage(2, [][]byte{[]byte("OpusHead....")}, false)...)
	stream = append(stream, oggPage(0, [][]byte{{0xfc, 1}, {0xfc, 2}}, false)...)
	stream = append(stream, oggPage(0, [][]byte{big[:510]}, true)...) // continues
	stream = append(stream, oggPage(1, [][]byte{big[510:]}, false)...)
	stream = append(stream, oggPage(0, [][]byte{bytes.Repeat([]byte{1}, 255)}, false)...) // 255 needs a 0 lacing
	r := newOggReader(bytes.NewReader(stream))
	want := [][]byte{[]byte("OpusHead...."), {0xfc, 1}, {0xfc, 2}, big, bytes.Repeat([]byte{1}, 255)}
	for i, w := range want {
		p, err := r.next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(p, w) {
			t.Fatalf("packet %d: %d bytes, want %d", i, len(p), len(w))
		}
	}
	if _, err := r.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if _, err := newOggReader(bytes.NewReader([]byte("NotOgg" + string(make([]byte, 30))))).next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
}
