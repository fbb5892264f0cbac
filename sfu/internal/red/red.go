package red

import "errors"

// Limits of the RED block header fields.
const (
	MaxOffset = 1<<14 - 1 // largest timestamp offset a header can carry
	MaxLength = 1<<10 - 1 // largest redundant block a header can carry
)

// Parse errors.
var (
	ErrEmpty     = errors.New("red: empty payload")
	ErrTruncated = errors.New("red: payload ends inside a block header")
	ErrLength    = errors.New("red: block lengths exceed the payload")
	ErrTooLarge  = errors.New("red: block offset or length does not fit the header")
)

// Block is one block of a RED payload. Payload aliases the parsed buffer.
type Block struct {
	PT      uint8  // block payload type (7 bits)
	Offset  uint16 // timestamp offset from the packet's timestamp; 0 for the primary
	Payload []byte
}

// Payload is a validated RED payload. The zero value has no blocks.
type Payload struct {
	data   []byte
	blocks int // number of blocks, the primary included
	hdrLen int // bytes of headers
}

// Parse validates a RED payload. It does not allocate.
func Parse(data []byte) (Payload, error) {
	if len(data) == 0 {
		return Payload{}, ErrEmpty
	}
	i, sum, n := 0, 0, 0
	for {
		if i >= len(data) {
			return Payload{}, ErrTruncated
		}
		if data[i]&0x80 == 0 {
			i++
			n++
			break
		}
		if i+4 > len(data) {
			return Payload{}, ErrTruncated
		}
		sum += int(data[i+2]&0x03)<<8 | int(data[i+3])
		i += 4
		n++
	}
	if i+sum > len(data) {
		return Payload{}, ErrLength
	}
	return Payload{data: data, blocks: n, hdrLen: i}, nil
}

// Len is the number of blocks, the primary included.
func (p Payload) Len() int { return p.blocks }

// Redundant is the number of redundant blocks.
func (p Payload) Redundant() int {
	if p.blocks == 0 {
		return 0
	}
	return p.blocks - 1
}

// Blocks iterates over the blocks, oldest first, the primary last:
//
//	for it := p.Blocks(); it.Next(); { b := it.Block() ... }
func (p Payload) Blocks() Iter {
	return Iter{p: p, hdr: 0, off: p.hdrLen, left: p.blocks}
}

// Primary is the last block. It is the zero Block for the zero Payload.
func (p Payload) Primary() Block {
	var b Block
	for it := p.Blocks(); it.Next(); {
		b = it.Block()
	}
	return b
}

// Iter walks a Payload's blocks without allocating.
type Iter struct {
	p    Payload
	hdr  int // next header
	off  int // next block's data
	left int
	cur  Block
}

// Next advances to the next block and reports whether there is one.
func (it *Iter) Next() bool {
	if it.left == 0 {
		return false
	}
	d := it.p.data
	h := it.hdr
	it.left--
	if it.left == 0 { // primary: 1-byte header, the rest of the data
		it.cur = Block{PT: d[h] & 0x7f, Payload: d[it.off:len(d):len(d)]}
		it.off = len(d)
		return true
	}
	n := int(d[h+2]&0x03)<<8 | int(d[h+3])
	it.cur = Block{
		PT:      d[h] & 0x7f,
		Offset:  uint16(d[h+1])<<6 | uint16(d[h+2])>>2,
		Payload: d[it.off : it.off+n : it.off+n],
	}
	it.hdr += 4
	it.off += n
	return true
}

// Block is the current block.
func (it *Iter) Block() Block { return it.cur }

// Pack appends to dst a RED payload of the redundant blocks (oldest first,
// each with its Offset) followed by the primary block. It fails, leaving
// dst as it was, when a redundant block's offset or length does not fit.
func Pack(dst []byte, redundant []Block, primaryPT uint8, primary []byte) ([]byte, error) {
	for _, b := range redundant {
		if b.Offset > MaxOffset || len(b.Payload) > MaxLength {
			return dst, ErrTooLarge
		}
	}
	for _, b := range redundant {
		n := len(b.Payload)
		dst = append(dst,
			0x80|b.PT&0x7f,
			byte(b.Offset>>6),
			byte(b.Offset<<2)|byte(n>>8),
			byte(n))
	}
	dst = append(dst, primaryPT&0x7f)
	for _, b := range redundant {
		dst = append(dst, b.Payload...)
	}
	return append(dst, primary...), nil
}

// SetPT rewrites the payload type of every block of a RED payload in
// place (an SFU whose subscriber numbers Opus differently from the
// publisher). It reports false, changing nothing past the first bad
// header, when the payload ends inside a header.
func SetPT(data []byte, pt uint8) bool {
	for i := 0; i < len(data); i += 4 {
		data[i] = data[i]&0x80 | pt&0x7f
		if data[i]&0x80 == 0 {
			return true
		}
		if i+4 > len(data) {
			return false
		}
	}
	return false
}
