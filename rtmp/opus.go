package rtmp

import "fmt"

// opusSamples returns a packet's duration in 48 kHz samples from its TOC
// byte and frame count (RFC 6716 section 3.1).
func opusSamples(p []byte) (int, error) {
	if len(p) < 1 {
		return 0, fmt.Errorf("%w: empty Opus packet", ErrMalformed)
	}
	cfg := p[0] >> 3
	var frame int // samples at 48 kHz
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = [...]int{480, 960, 1920, 2880}[cfg%4]
	case cfg < 16: // hybrid: 10, 20 ms
		frame = [...]int{480, 960}[cfg%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [...]int{120, 240, 480, 960}[cfg%4]
	}
	var frames int
	switch p[0] & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, fmt.Errorf("%w: Opus code-3 packet without frame count", ErrMalformed)
		}
		frames = int(p[1] & 0x3f)
		if frames == 0 {
			return 0, fmt.Errorf("%w: Opus code-3 packet with zero frames", ErrMalformed)
		}
	}
	total := frame * frames
	if total > 5760 { // 120 ms is the Opus maximum
		return 0, fmt.Errorf("%w: Opus packet of %d samples exceeds 120 ms", ErrMalformed, total)
	}
	return total, nil
}
