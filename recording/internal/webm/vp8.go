package webm

// VP8KeyframeSize reads the picture size from a VP8 key frame's header
// (RFC 6386 9.1: 3-byte frame tag, start code 9d 01 2a, then 14-bit width
// and height, each with 2 bits of scaling). ok is false for an
// interframe or a short buffer.
func VP8KeyframeSize(frame []byte) (width, height int, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 {
		return 0, 0, false
	}
	if frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	width = int(frame[6]) | int(frame[7]&0x3f)<<8
	height = int(frame[8]) | int(frame[9]&0x3f)<<8
	return width, height, width > 0 && height > 0
}
