package red

// Encoder adds redundancy to a plain Opus stream: each payload goes out as
// a RED payload carrying up to Distance previous frames. Frames whose
// offset or size do not fit a block header are left out, as browsers do.
// It keeps its own copies of the previous frames (grown once to the
// largest frame, then reused). It is not safe for concurrent use.
type Encoder struct {
	Distance int // redundant frames per packet, at most MaxRecover

	hist  [MaxRecover]frame // ring of previous frames, oldest first from next
	next  int
	count int
	red   [MaxRecover]Block
}

type frame struct {
	ts  uint32
	pt  uint8
	buf []byte
}

// Encode appends to dst the RED payload for the frame (ts, pt, payload)
// and remembers the frame for the next packets.
func (e *Encoder) Encode(dst []byte, ts uint32, pt uint8, payload []byte) []byte {
	dist := min(max(e.Distance, 0), MaxRecover)
	red := e.red[:0]
	for k := min(dist, e.count); k >= 1; k-- { // oldest first
		f := &e.hist[(e.next-k+MaxRecover)%MaxRecover]
		off := ts - f.ts
		if off == 0 || off > MaxOffset || len(f.buf) > MaxLength {
			continue
		}
		red = append(red, Block{PT: f.pt, Offset: uint16(off), Payload: f.buf})
	}
	dst, _ = Pack(dst, red, pt, payload) // every block fits: checked above
	f := &e.hist[e.next]
	f.ts, f.pt, f.buf = ts, pt, append(f.buf[:0], payload...)
	e.next = (e.next + 1) % MaxRecover
	e.count = min(e.count+1, MaxRecover)
	return dst
}
