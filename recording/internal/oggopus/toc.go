package oggopus

import (
	"errors"
	"fmt"
)

// ErrBadPacket is returned for a packet whose TOC byte cannot be read.
var ErrBadPacket = errors.New("oggopus: malformed Opus packet")

// frameSamples is the frame length at 48 kHz of each TOC configuration
// (RFC 6716 3.1): SILK 10/20/40/60 ms, Hybrid 10/20 ms, CELT
// 2.5/5/10/20 ms.
func frameSamples(config byte) int {
	switch {
	case config < 12:
		return [4]int{480, 960, 1920, 2880}[config%4]
	case config < 16:
		return [2]int{480, 960}[config%2]
	default:
		return [4]int{120, 240, 480, 960}[config%4]
	}
}

// PacketSamples is the duration of an Opus packet in 48 kHz samples,
// read from its TOC byte (and frame count byte for code 3).
func PacketSamples(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrBadPacket)
	}
	n := frameSamples(p[0] >> 3)
	var frames int
	switch p[0] & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	default:
		if len(p) < 2 {
			return 0, fmt.Errorf("%w: code 3 without a frame count", ErrBadPacket)
		}
		frames = int(p[1] & 0x3F)
		if frames == 0 {
			return 0, fmt.Errorf("%w: no frames", ErrBadPacket)
		}
	}
	if total := n * frames; total <= 5760 { // at most 120 ms per packet
		return total, nil
	}
	return 0, fmt.Errorf("%w: longer than 120 ms", ErrBadPacket)
}

// silence20ms is a 20 ms CELT frame that decodes to silence (TOC config
// 31, mono, one frame; the range coder's "silence" flag).
func silence20ms() []byte { return []byte{0xF8, 0xFF, 0xFE} }
