package rtmp

import "encoding/binary"

// AMF0 markers whose declared sizes the check looks at (AMF0 spec 2.x).
const (
	amf0Number      = 0x00
	amf0Boolean     = 0x01
	amf0String      = 0x02
	amf0Object      = 0x03
	amf0Null        = 0x05
	amf0Undefined   = 0x06
	amf0Reference   = 0x07
	amf0ECMAArray   = 0x08
	amf0ObjectEnd   = 0x09
	amf0StrictArray = 0x0a
	amf0Date        = 0x0b
	amf0LongString  = 0x0c
	amf0Unsupported = 0x0d
	amf0XMLDocument = 0x0f
	amf0TypedObject = 0x10

	// amf0MaxDepth is far deeper than any encoder nests (connect's
	// command object is two levels).
	amf0MaxDepth = 32
)

// checkAMF0 walks the AMF0 values of a command or data message in the
// order go-amf0 decodes them and refuses the message when a strict array
// count or a long string length exceeds the bytes left in the message.
// go-amf0 allocates what those fields declare before reading any of it:
// a 5-byte strict array header claiming 2^31-1 elements makes it allocate
// 32 GiB, which kills the process, and go-rtmp decodes the connect
// command before any key is checked. Where the walk cannot go on
// (truncated value, marker it does not know) go-amf0 fails at the same
// place, having allocated no more than the bytes so far allow, so the
// message is left to it.
func checkAMF0(b []byte) error {
	w := amf0Walk{b: b}
	for len(w.b) > 0 && !w.stop {
		if err := w.value(0); err != nil {
			return err
		}
	}
	return nil
}

type amf0Walk struct {
	b    []byte
	stop bool // the rest is go-amf0's to reject
}

// take consumes n bytes, or stops the walk when fewer are left.
func (w *amf0Walk) take(n int) []byte {
	if w.stop || n > len(w.b) {
		w.stop = true
		return nil
	}
	v := w.b[:n]
	w.b = w.b[n:]
	return v
}

func (w *amf0Walk) u16() int {
	if v := w.take(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

// u32 reads a declared count or length and refuses it when it exceeds the
// bytes left (each element or byte it announces needs at least one).
func (w *amf0Walk) u32(what string) (int, error) {
	v := w.take(4)
	if v == nil {
		return 0, nil
	}
	n := binary.BigEndian.Uint32(v)
	if uint64(n) > uint64(len(w.b)) {
		return 0, refuseChunks(reasonAMF, "AMF0 %s declares %d with %d bytes left in the message", what, n, len(w.b))
	}
	return int(n), nil
}

func (w *amf0Walk) value(depth int) error {
	if depth > amf0MaxDepth {
		return refuseChunks(reasonAMF, "AMF0 values nested deeper than %d", amf0MaxDepth)
	}
	m := w.take(1)
	if m == nil {
		return nil
	}
	switch m[0] {
	case amf0Number:
		w.take(8)
	case amf0Boolean:
		w.take(1)
	case amf0String:
		w.take(w.u16())
	case amf0Null, amf0Undefined, amf0Unsupported:
	case amf0Reference:
		w.take(2)
	case amf0Date:
		w.take(10)
	case amf0Object:
		return w.properties(depth)
	case amf0TypedObject:
		w.take(w.u16()) // class name
		return w.properties(depth)
	case amf0ECMAArray:
		w.take(4) // go-amf0 ignores the count; the properties end with ObjectEnd
		return w.properties(depth)
	case amf0StrictArray:
		n, err := w.u32("strict array count")
		for i := 0; i < n && err == nil && !w.stop; i++ {
			err = w.value(depth + 1)
		}
		return err
	case amf0LongString, amf0XMLDocument:
		n, err := w.u32("long string length")
		w.take(n)
		return err
	default: // reserved, AVM+ switch, ObjectEnd out of place
		w.stop = true
	}
	return nil
}

// properties walks name/value pairs up to the empty name, which go-amf0
// requires to be followed by ObjectEnd.
func (w *amf0Walk) properties(depth int) error {
	for !w.stop {
		name := w.u16()
		if name == 0 {
			if end := w.take(1); end == nil || end[0] != amf0ObjectEnd {
				w.stop = true
			}
			return nil
		}
		w.take(name)
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
