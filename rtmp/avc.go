package rtmp

import (
	"encoding/binary"
	"fmt"
)

// avcConfig is a parsed AVCDecoderConfigurationRecord (ISO/IEC 14496-15).
type avcConfig struct {
	LengthSize int // NALU length prefix size: 1, 2 or 4
	SPS        [][]byte
	PPS        [][]byte
}

// parseAVCConfig parses the body of an AVC sequence header tag. The
// returned parameter sets are copies: the tag buffer is reused by the
// RTMP library.
func parseAVCConfig(b []byte) (avcConfig, error) {
	var c avcConfig
	if len(b) < 7 {
		return c, fmt.Errorf("%w: AVC config record too short (%d bytes)", ErrMalformed, len(b))
	}
	if b[0] != 1 {
		return c, fmt.Errorf("%w: AVC config record version %d", ErrMalformed, b[0])
	}
	c.LengthSize = int(b[4]&0x03) + 1
	if c.LengthSize == 3 {
		return c, fmt.Errorf("%w: AVC NALU length size 3 is not allowed", ErrMalformed)
	}
	p := 6
	readSets := func(count int, kind string) ([][]byte, error) {
		sets := make([][]byte, 0, count)
		for i := 0; i < count; i++ {
			if p+2 > len(b) {
				return nil, fmt.Errorf("%w: AVC config record truncated in %s %d", ErrMalformed, kind, i)
			}
			n := int(binary.BigEndian.Uint16(b[p:]))
			p += 2
			if n == 0 || p+n > len(b) {
				return nil, fmt.Errorf("%w: AVC config record %s %d has bad length %d", ErrMalformed, kind, i, n)
			}
			sets = append(sets, append([]byte(nil), b[p:p+n]...))
			p += n
		}
		return sets, nil
	}
	var err error
	if c.SPS, err = readSets(int(b[5]&0x1f), "SPS"); err != nil {
		return c, err
	}
	if p >= len(b) {
		return c, fmt.Errorf("%w: AVC config record has no PPS count", ErrMalformed)
	}
	numPPS := int(b[p])
	p++
	if c.PPS, err = readSets(numPPS, "PPS"); err != nil {
		return c, err
	}
	if len(c.SPS) == 0 || len(c.PPS) == 0 {
		return c, fmt.Errorf("%w: AVC config record needs at least one SPS and one PPS (got %d, %d)", ErrMalformed, len(c.SPS), len(c.PPS))
	}
	for _, s := range c.SPS {
		if s[0]&0x1f != naluSPS {
			return c, fmt.Errorf("%w: AVC config record SPS has NAL type %d", ErrMalformed, s[0]&0x1f)
		}
	}
	for _, s := range c.PPS {
		if s[0]&0x1f != naluPPS {
			return c, fmt.Errorf("%w: AVC config record PPS has NAL type %d", ErrMalformed, s[0]&0x1f)
		}
	}
	return c, nil
}

// splitNALUs splits a length-prefixed AVC sample into NAL units (aliasing b).
func splitNALUs(b []byte, lengthSize int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < lengthSize {
			return nil, fmt.Errorf("%w: truncated NALU length", ErrMalformed)
		}
		var n int
		for i := 0; i < lengthSize; i++ {
			n = n<<8 | int(b[i])
		}
		b = b[lengthSize:]
		if n > len(b) {
			return nil, fmt.Errorf("%w: NALU length %d exceeds remaining %d bytes", ErrMalformed, n, len(b))
		}
		if n > 0 {
			out = append(out, b[:n])
		}
		b = b[n:]
	}
	return out, nil
}
