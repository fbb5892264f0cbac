package webm

// VP9Frame reads a VP9 frame's uncompressed header (VP9 bitstream
// specification, 6.2): whether it is a key frame and, for a key frame,
// the picture size. A superframe (several frames and an index at the end)
// is read by its first frame, which is where a key frame sits. ok is
// false for what is not a VP9 frame header or is cut short.
func VP9Frame(frame []byte) (key bool, width, height int, ok bool) {
	r := vp9Bits{b: frame}
	if r.read(2) != 2 { // frame_marker
		return false, 0, 0, false
	}
	profile := r.read(1) | r.read(1)<<1
	if profile == 3 {
		r.read(1) // reserved_zero
	}
	if r.read(1) == 1 { // show_existing_frame: shows an earlier frame again
		return false, 0, 0, !r.short
	}
	frameType := r.read(1) // 0: key frame
	r.read(2)              // show_frame, error_resilient_mode
	if frameType != 0 {
		return false, 0, 0, !r.short
	}
	if r.read(24) != 0x498342 { // frame_sync_code
		return false, 0, 0, false
	}
	// color_config (6.2.2)
	if profile >= 2 {
		r.read(1) // ten_or_twelve_bit
	}
	const csRGB = 7
	if r.read(3) != csRGB {
		r.read(1) // color_range
		if profile == 1 || profile == 3 {
			r.read(3) // subsampling_x, subsampling_y, reserved_zero
		}
	} else if profile == 1 || profile == 3 {
		r.read(1) // reserved_zero
	}
	width, height = int(r.read(16))+1, int(r.read(16))+1
	if r.short {
		return false, 0, 0, false
	}
	return true, width, height, true
}

// vp9Bits reads bits most significant first; reading past the end gives
// zeros and sets short.
type vp9Bits struct {
	b     []byte
	pos   int
	short bool
}

func (r *vp9Bits) read(n int) uint32 {
	var v uint32
	for range n {
		bit := uint32(0)
		if r.pos < 8*len(r.b) {
			bit = uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
		} else {
			r.short = true
		}
		v = v<<1 | bit
		r.pos++
	}
	return v
}
