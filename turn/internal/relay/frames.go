package relay

import (
	"encoding/binary"
	"io"
)

// StreamBufSize is a client stream's read buffer. pion reads client
// frames into 1600 bytes and drops anything that does not fit, so frames
// larger than the caller's buffer are skipped, never buffered.
const StreamBufSize = 8192

// methodConnectionBind is the message type of an RFC 6062 ConnectionBind
// request; after it the connection carries raw peer data.
const methodConnectionBind = 0x000b

// FrameKind says what FrameReader.next found.
type FrameKind int

const (
	FrameNeedMore    FrameKind = iota // an incomplete frame: read more
	FrameSTUN                         // a STUN message
	FrameChannelData                  // ChannelData with its padding
	FrameSkipped                      // a frame too large for the caller, discarded
	FrameInvalid                      // neither STUN nor ChannelData
	FrameRaw                          // raw bytes after the framing ended (nextForPion)
)

// FrameReader splits a client's TURN-over-TCP stream (RFC 8656 section
// 12: STUN messages, and ChannelData padded to 4 bytes) into whole frames,
// so ChannelData can take the fast path and pion gets one whole frame per
// read. Once raw is set (after a ConnectionBind, or on bytes that are not
// TURN framing) the bytes pass through untouched and pion decides.
type FrameReader struct {
	buf  []byte // buffered bytes are buf[r:w]
	r, w int
	skip int // bytes of a skipped frame not yet read
	raw  bool
}

// next returns the next complete frame, at most limit bytes long.
func (f *FrameReader) next(limit int) ([]byte, FrameKind) {
	if f.skip > 0 {
		n := min(f.skip, f.w-f.r)
		f.skip -= n
		f.r += n
		if f.skip > 0 {
			return nil, FrameNeedMore
		}
	}
	b := f.buf[f.r:f.w]
	if len(b) < 4 {
		return nil, FrameNeedMore
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	var total int
	var kind FrameKind
	switch {
	case b[0] < 0x40:
		if len(b) < 8 {
			return nil, FrameNeedMore
		}
		if binary.BigEndian.Uint32(b[4:8]) != 0x2112A442 {
			return nil, FrameInvalid
		}
		total, kind = 20+length, FrameSTUN
	case b[0] < 0x80:
		total, kind = 4+(length+3)&^3, FrameChannelData
	default:
		return nil, FrameInvalid
	}
	if total > limit {
		n := min(total, len(b))
		f.r += n
		f.skip = total - n

		return nil, FrameSkipped
	}
	if len(b) < total {
		return nil, FrameNeedMore
	}
	f.r += total

	return b[:total], kind
}

// nextForPion returns the next piece of the stream that pion must read:
// a STUN message, ChannelData that toPeer (the fast path) did not relay,
// or, once the framing has ended, up to limit raw bytes. It applies the
// rules both readers of a client stream share: oversized frames are
// skipped, a ConnectionBind or bytes that are not TURN framing switch the
// stream to raw. FrameNeedMore means fill and ask again.
func (f *FrameReader) NextForPion(limit int, toPeer func([]byte) bool) ([]byte, FrameKind) {
	for {
		if f.raw {
			if f.r == f.w {
				return nil, FrameNeedMore
			}
			chunk := f.buf[f.r:min(f.w, f.r+limit)]
			f.r += len(chunk)

			return chunk, FrameRaw
		}
		frame, kind := f.next(limit)
		switch kind {
		case FrameSkipped:
			continue
		case FrameInvalid:
			f.raw = true // pion sees the bytes and ends the connection

			continue
		case FrameChannelData:
			if toPeer(frame) {
				continue
			}
		case FrameSTUN:
			if isConnectionBind(frame) {
				f.raw = true
			}
		}

		return frame, kind
	}
}

// Raw reports whether the framing ended: the bytes pass through as they
// come (after a ConnectionBind, or bytes that are not TURN framing).
func (f *FrameReader) Raw() bool { return f.raw }

// Fill reads more of the stream into the buffer.
func (f *FrameReader) Fill(r io.Reader) error {
	if f.buf == nil {
		f.buf = make([]byte, StreamBufSize)
	}
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	n, err := r.Read(f.buf[f.w:])
	f.w += n
	if n > 0 {
		return nil // an error comes back on the next read
	}

	return err
}

// Drain hands out buffered bytes (raw mode).
func (f *FrameReader) Drain(p []byte) int {
	n := copy(p, f.buf[f.r:f.w])
	f.r += n

	return n
}

// isConnectionBind reports whether a STUN frame is a ConnectionBind request.
func isConnectionBind(frame []byte) bool {
	return binary.BigEndian.Uint16(frame[0:2]) == methodConnectionBind
}
