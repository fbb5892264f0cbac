package relay

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
	"testing"

	"github.com/pion/stun/v4"
)

// stream builds a TURN-over-TCP byte stream: a signed request, a padded
// ChannelData frame, another request.
func stream(t testing.TB) (data []byte, msgs [][]byte) {
	m1 := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("a"))
	m2 := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.Fingerprint)
	cd := []byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0} // 5 bytes + 3 padding
	data = append(append(append(data, m1.Raw...), cd...), m2.Raw...)

	return data, [][]byte{m1.Raw, m2.Raw}
}

// chunkReader hands out its data a few bytes per Read, as TCP may.
type chunkReader struct {
	data  []byte
	chunk int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data[:min(c.chunk, len(c.data))])
	c.data = c.data[n:]

	return n, nil
}

// readFrames runs a FrameReader over r until the data ends or the
// framing breaks, with frames limited to limit bytes.
func readFrames(r io.Reader, limit int) (frames [][]byte, kinds []FrameKind) {
	var f FrameReader
	for range 100000 {
		frame, kind := f.next(limit)
		switch kind {
		case FrameNeedMore:
			if f.Fill(r) != nil {
				return frames, kinds
			}
		case FrameInvalid:
			return frames, append(kinds, kind)
		case FrameSkipped:
			kinds = append(kinds, kind)
		default:
			frames = append(frames, append([]byte(nil), frame...))
			kinds = append(kinds, kind)
		}
	}
	panic("FrameReader did not finish")
}

func TestFrameReaderSplitsStream(t *testing.T) {
	data, msgs := stream(t)
	cd := data[len(msgs[0]) : len(data)-len(msgs[1])]
	for chunk := 1; chunk <= len(data); chunk++ {
		frames, kinds := readFrames(&chunkReader{data: data, chunk: chunk}, 1600)
		want := []FrameKind{FrameSTUN, FrameChannelData, FrameSTUN}
		if len(frames) != 3 || !slices.Equal(kinds, want) {
			t.Fatalf("chunk %d: got kinds %v", chunk, kinds)
		}
		if !bytes.Equal(frames[0], msgs[0]) || !bytes.Equal(frames[1], cd) || !bytes.Equal(frames[2], msgs[1]) {
			t.Fatalf("chunk %d: frames differ", chunk)
		}
	}
	// A frame larger than the reader's buffer is skipped whole; the next
	// one is found.
	_, kinds := readFrames(&chunkReader{data: data, chunk: 5}, 16)
	if !slices.Equal(kinds, []FrameKind{FrameSkipped, FrameChannelData, FrameSkipped}) {
		t.Fatalf("limit 16: got kinds %v", kinds)
	}
	// A TLS ClientHello sent to the plain TCP port is not TURN framing.
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	_, kinds = readFrames(&chunkReader{data: hello, chunk: 3}, 1600)
	if !slices.Equal(kinds, []FrameKind{FrameInvalid}) {
		t.Fatalf("raw bytes: got kinds %v", kinds)
	}
}

// FuzzFrameReader feeds arbitrary client bytes in arbitrary chunks: no
// panic, and every frame handed on is a well-formed STUN message or a
// padded ChannelData frame within the limit.
func FuzzFrameReader(f *testing.F) {
	data, _ := stream(f)
	f.Add(data, uint8(7), uint16(1600))
	f.Add([]byte{0x00, 0x01, 0xff, 0xff}, uint8(1), uint16(100))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1}, uint8(3), uint16(1600))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8, limit uint16) {
		lim := int(limit%4096) + 4
		frames, _ := readFrames(&chunkReader{data: b, chunk: int(chunk%64) + 1}, lim)
		total := 0
		for _, m := range frames {
			total += len(m)
			if len(m) > lim {
				t.Fatalf("frame of %d bytes over the limit %d", len(m), lim)
			}
			length := int(binary.BigEndian.Uint16(m[2:4]))
			switch {
			case m[0] < 0x40:
				if len(m) < 20 || binary.BigEndian.Uint32(m[4:8]) != 0x2112A442 || length+20 != len(m) {
					t.Fatalf("bad STUN frame passed on: % x", m)
				}
			default:
				if m[0]&0xc0 != 0x40 || 4+(length+3)&^3 != len(m) {
					t.Fatalf("bad ChannelData frame passed on: % x", m)
				}
			}
		}
		if total > len(b) {
			t.Fatalf("handed on %d bytes of %d", total, len(b))
		}
	})
}
