package rtmp

import (
	"errors"
	"fmt"
)

// NAL unit types used here.
const (
	naluIDR   = 5
	naluSEI   = 6
	naluSPS   = 7
	naluPPS   = 8
	naluAUD   = 9
	naluSTAPA = 24
	naluFUA   = 28
)

// spsInfo is what Parley needs from an H.264 sequence parameter set.
type spsInfo struct {
	ProfileIDC  byte
	Constraints byte
	LevelIDC    byte
	ChromaIDC   uint
	BitDepth    uint
	Width       int
	Height      int
}

var errBitsExhausted = errors.New("bitstream exhausted")

type bitReader struct {
	b   []byte
	pos int // in bits
}

func (r *bitReader) u1() (uint, error) {
	if r.pos >= len(r.b)*8 {
		return 0, errBitsExhausted
	}
	v := uint(r.b[r.pos/8]>>(7-uint(r.pos%8))) & 1
	r.pos++
	return v, nil
}

func (r *bitReader) u(n int) (uint, error) {
	var v uint
	for i := 0; i < n; i++ {
		bit, err := r.u1()
		if err != nil {
			return 0, err
		}
		v = v<<1 | bit
	}
	return v, nil
}

// ue reads an Exp-Golomb code; values beyond 32 bits are rejected so that a
// hostile SPS cannot make us loop or overflow.
func (r *bitReader) ue() (uint, error) {
	zeros := 0
	for {
		bit, err := r.u1()
		if err != nil {
			return 0, err
		}
		if bit == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			return 0, fmt.Errorf("exp-golomb code too long")
		}
	}
	rest, err := r.u(zeros)
	if err != nil {
		return 0, err
	}
	return (1<<uint(zeros) - 1) + rest, nil
}

func (r *bitReader) se() (int, error) {
	v, err := r.ue()
	if err != nil {
		return 0, err
	}
	if v&1 == 1 {
		return int((v + 1) / 2), nil
	}
	return -int(v / 2), nil
}

// unescapeRBSP removes emulation prevention bytes (00 00 03 -> 00 00).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// parseSPS parses an SPS NAL unit (with its one-byte NAL header) far enough
// to get the profile, level, chroma format, bit depth and picture size.
func parseSPS(nal []byte) (spsInfo, error) {
	var s spsInfo
	if len(nal) < 4 || nal[0]&0x1f != naluSPS {
		return s, fmt.Errorf("%w: not an SPS", ErrMalformed)
	}
	rbsp := unescapeRBSP(nal[1:])
	if len(rbsp) < 3 {
		return s, fmt.Errorf("%w: SPS too short", ErrMalformed)
	}
	s.ProfileIDC, s.Constraints, s.LevelIDC = rbsp[0], rbsp[1], rbsp[2]
	s.ChromaIDC, s.BitDepth = 1, 8
	r := &bitReader{b: rbsp, pos: 24}
	fail := func(err error) (spsInfo, error) {
		return s, fmt.Errorf("%w: SPS: %w", ErrMalformed, err)
	}
	if _, err := r.ue(); err != nil { // seq_parameter_set_id
		return fail(err)
	}
	switch s.ProfileIDC {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		v, err := r.ue()
		if err != nil {
			return fail(err)
		}
		if v > 3 {
			return fail(fmt.Errorf("chroma_format_idc %d", v))
		}
		s.ChromaIDC = v
		if v == 3 {
			if _, err := r.u1(); err != nil { // separate_colour_plane_flag
				return fail(err)
			}
		}
		bdl, err := r.ue()
		if err != nil {
			return fail(err)
		}
		if _, err := r.ue(); err != nil { // bit_depth_chroma_minus8
			return fail(err)
		}
		s.BitDepth = bdl + 8
		if _, err := r.u1(); err != nil { // qpprime_y_zero_transform_bypass_flag
			return fail(err)
		}
		present, err := r.u1()
		if err != nil {
			return fail(err)
		}
		if present == 1 {
			lists := 8
			if s.ChromaIDC == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				f, err := r.u1()
				if err != nil {
					return fail(err)
				}
				if f == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					if err := skipScalingList(r, size); err != nil {
						return fail(err)
					}
				}
			}
		}
	}
	if _, err := r.ue(); err != nil { // log2_max_frame_num_minus4
		return fail(err)
	}
	pocType, err := r.ue()
	if err != nil {
		return fail(err)
	}
	switch pocType {
	case 0:
		if _, err := r.ue(); err != nil {
			return fail(err)
		}
	case 1:
		if _, err := r.u1(); err != nil {
			return fail(err)
		}
		if _, err := r.se(); err != nil {
			return fail(err)
		}
		if _, err := r.se(); err != nil {
			return fail(err)
		}
		n, err := r.ue()
		if err != nil {
			return fail(err)
		}
		if n > 255 {
			return fail(fmt.Errorf("num_ref_frames_in_pic_order_cnt_cycle %d", n))
		}
		for i := uint(0); i < n; i++ {
			if _, err := r.se(); err != nil {
				return fail(err)
			}
		}
	case 2:
	default:
		return fail(fmt.Errorf("pic_order_cnt_type %d", pocType))
	}
	if _, err := r.ue(); err != nil { // max_num_ref_frames
		return fail(err)
	}
	if _, err := r.u1(); err != nil { // gaps_in_frame_num_value_allowed_flag
		return fail(err)
	}
	wMbs, err := r.ue()
	if err != nil {
		return fail(err)
	}
	hMaps, err := r.ue()
	if err != nil {
		return fail(err)
	}
	frameMbsOnly, err := r.u1()
	if err != nil {
		return fail(err)
	}
	if frameMbsOnly == 0 {
		if _, err := r.u1(); err != nil { // mb_adaptive_frame_field_flag
			return fail(err)
		}
	}
	if _, err := r.u1(); err != nil { // direct_8x8_inference_flag
		return fail(err)
	}
	if wMbs > 1024 || hMaps > 1024 {
		return fail(fmt.Errorf("picture size %dx%d macroblocks", wMbs+1, hMaps+1))
	}
	width := int(wMbs+1) * 16
	height := int(2-frameMbsOnly) * int(hMaps+1) * 16
	crop, err := r.u1()
	if err != nil {
		return fail(err)
	}
	if crop == 1 {
		var c [4]uint
		for i := range c {
			if c[i], err = r.ue(); err != nil {
				return fail(err)
			}
		}
		unitX, unitY := 1, int(2-frameMbsOnly)
		if s.ChromaIDC == 1 || s.ChromaIDC == 2 {
			unitX = 2
		}
		if s.ChromaIDC == 1 {
			unitY *= 2
		}
		if c[0] > 16384 || c[1] > 16384 || c[2] > 16384 || c[3] > 16384 {
			return fail(fmt.Errorf("frame cropping out of range"))
		}
		width -= unitX * int(c[0]+c[1])
		height -= unitY * int(c[2]+c[3])
	}
	if width <= 0 || height <= 0 {
		return fail(fmt.Errorf("cropped picture size %dx%d", width, height))
	}
	s.Width, s.Height = width, height
	return s, nil
}

func skipScalingList(r *bitReader, size int) error {
	last, next := 8, 8
	for j := 0; j < size; j++ {
		if next != 0 {
			d, err := r.se()
			if err != nil {
				return err
			}
			next = (last + d + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}

// profileLevelID returns the profile-level-id to put in the SDP fmtp line.
// Browsers (and pion, which compares only profile_idc and the constraint
// byte) offer 42001f, 42e01f, 4d001f and 64001f, so the stream's profile is
// mapped onto one of those families; the level is kept from the SPS.
// x264's baseline SPS says 42c0xx (constraint_set0+1): it is constrained
// baseline and must be offered as 42e0xx or no browser will match it.
func profileLevelID(s spsInfo) (string, error) {
	if s.ChromaIDC != 1 || s.BitDepth != 8 {
		return "", fmt.Errorf("%w: H.264 with chroma format %d and %d-bit samples; browsers decode 8-bit 4:2:0 only: pick profile baseline, main or high", ErrUnsupportedVideoCodec, s.ChromaIDC, s.BitDepth)
	}
	const set1 = 0x40 // constraint_set1_flag: decodable by a main-profile decoder
	var prefix string
	switch s.ProfileIDC {
	case 66:
		if s.Constraints&set1 != 0 {
			prefix = "42e0"
		} else {
			prefix = "4200"
		}
	case 77:
		prefix = "4d00"
	case 100:
		// Constrained high (640c) is a subset of high; browsers list high.
		prefix = "6400"
	default:
		return "", fmt.Errorf("%w: H.264 profile_idc %d; browsers decode baseline, main or high: set the x264 profile in OBS to baseline, main or high", ErrUnsupportedVideoCodec, s.ProfileIDC)
	}
	level := s.LevelIDC
	if level == 0 {
		level = 0x1f
	}
	return fmt.Sprintf("%s%02x", prefix, level), nil
}

// h264FmtpLine is the SDP fmtp line for the video track.
func h264FmtpLine(profileLevelID string) string {
	return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID
}
