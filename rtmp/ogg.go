package rtmp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// maxOggPacket bounds a reassembled Ogg packet; Opus packets are far smaller.
const maxOggPacket = 64 << 10

// oggReader yields the packets of a single-stream Ogg file (RFC 3533), as
// ffmpeg's ogg muxer writes Opus. The CRC is not checked: the input is our
// own child process on a pipe, and a corrupt packet only costs one frame.
type oggReader struct {
	r       *bufio.Reader
	hdr     [27]byte
	lacing  [255]byte
	pending [][]byte // complete packets from the current page
	partial []byte   // packet continued onto the next page
}

func newOggReader(r io.Reader) *oggReader {
	return &oggReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// next returns the next complete packet.
func (o *oggReader) next() ([]byte, error) {
	for len(o.pending) == 0 {
		if err := o.readPage(); err != nil {
			return nil, err
		}
	}
	p := o.pending[0]
	o.pending = o.pending[1:]
	return p, nil
}

func (o *oggReader) readPage() error {
	if _, err := io.ReadFull(o.r, o.hdr[:]); err != nil {
		return err
	}
	if !bytes.Equal(o.hdr[:4], []byte("OggS")) || o.hdr[4] != 0 {
		return fmt.Errorf("%w: not an Ogg page", ErrMalformed)
	}
	_ = binary.LittleEndian.Uint64(o.hdr[6:14]) // granule position: durations come from the TOC
	continued := o.hdr[5]&0x01 != 0
	if !continued {
		o.partial = o.partial[:0]
	}
	n := int(o.hdr[26])
	if _, err := io.ReadFull(o.r, o.lacing[:n]); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		seg := int(o.lacing[i])
		start := len(o.partial)
		if start+seg > maxOggPacket {
			return fmt.Errorf("%w: Ogg packet exceeds %d bytes", ErrMalformed, maxOggPacket)
		}
		o.partial = append(o.partial, make([]byte, seg)...)
		if _, err := io.ReadFull(o.r, o.partial[start:]); err != nil {
			return err
		}
		if seg < 255 {
			o.pending = append(o.pending, o.partial)
			o.partial = nil
		}
	}
	return nil
}
