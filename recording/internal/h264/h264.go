package h264

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// NAL unit types used here (H.264 table 7-1).
const (
	TypeSlice = 1 // a coded slice of a non-IDR picture
	TypeIDR   = 5 // a coded slice of an IDR picture: a key frame
	TypeSPS   = 7
	TypePPS   = 8
)

// Type is a NAL unit's nal_unit_type (0 for an empty unit).
func Type(nal []byte) byte {
	if len(nal) == 0 {
		return 0
	}
	return nal[0] & 0x1f
}

// ErrMalformed: the input is not what the H.264 syntax allows.
var ErrMalformed = errors.New("h264: malformed")

// NALs calls f with each NAL unit of an AVC-form frame (4-byte big-endian
// length, then the unit) until f returns false. A length that runs past
// the frame or an empty unit is ErrMalformed.
func NALs(frame []byte, f func(nal []byte) bool) error {
	for len(frame) > 0 {
		if len(frame) < 4 {
			return fmt.Errorf("%w: %d bytes left, no room for a length", ErrMalformed, len(frame))
		}
		n := binary.BigEndian.Uint32(frame)
		if n == 0 || uint64(n) > uint64(len(frame)-4) {
			return fmt.Errorf("%w: NAL length %d with %d bytes left", ErrMalformed, n, len(frame)-4)
		}
		if !f(frame[4 : 4+n]) {
			return nil
		}
		frame = frame[4+n:]
	}
	return nil
}

// SPS is what a recording takes from a sequence parameter set.
type SPS struct {
	Profile, Compat, Level byte // profile_idc, the constraint flags, level_idc
	ChromaFormat           int  // chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
	BitDepthLuma           int  // bits per sample
	BitDepthChroma         int
	Width, Height          int // the displayed picture, cropping applied
}

// highProfile: profiles whose SPS carries chroma format and bit depth
// (H.264 7.3.2.1.1), and whose avcC has the matching extension.
func highProfile(p byte) bool {
	switch p {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// Limits on what a parameter set may say: beyond them the stream is not
// one a recording keeps (H.264 level 6.2 is 8192x4320; Exp-Golomb codes
// of more than 31 leading zeros do not fit the syntax's 32-bit values).
const (
	maxDimension    = 16384
	maxLeadingZeros = 31
)

// ParseSPS reads a sequence parameter set NAL unit (header included).
func ParseSPS(nal []byte) (SPS, error) {
	if Type(nal) != TypeSPS || len(nal) < 4 {
		return SPS{}, fmt.Errorf("%w: not a sequence parameter set", ErrMalformed)
	}
	s := SPS{Profile: nal[1], Compat: nal[2], Level: nal[3], ChromaFormat: 1, BitDepthLuma: 8, BitDepthChroma: 8}
	r := &bitReader{b: unescape(nal[4:])}
	r.ue() // seq_parameter_set_id
	if highProfile(s.Profile) {
		s.ChromaFormat = int(r.ue())
		if s.ChromaFormat > 3 {
			return SPS{}, fmt.Errorf("%w: chroma_format_idc %d", ErrMalformed, s.ChromaFormat)
		}
		separatePlanes := false
		if s.ChromaFormat == 3 {
			separatePlanes = r.bit() == 1
		}
		if separatePlanes {
			// Each colour plane is coded as monochrome (7.4.2.1.1).
			s.ChromaFormat = 0
		}
		s.BitDepthLuma = 8 + int(r.ue())
		s.BitDepthChroma = 8 + int(r.ue())
		if s.BitDepthLuma > 14 || s.BitDepthChroma > 14 {
			return SPS{}, fmt.Errorf("%w: bit depth %d/%d", ErrMalformed, s.BitDepthLuma, s.BitDepthChroma)
		}
		r.bit()           // qpprime_y_zero_transform_bypass_flag
		if r.bit() == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if s.ChromaFormat == 3 || separatePlanes {
				lists = 12
			}
			for i := range lists {
				if r.bit() == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					skipScalingList(r, size)
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bit() // delta_pic_order_always_zero_flag
		r.se()  // offset_for_non_ref_pic
		r.se()  // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return SPS{}, fmt.Errorf("%w: num_ref_frames_in_pic_order_cnt_cycle %d", ErrMalformed, n)
		}
		for range n {
			r.se()
		}
	}
	r.ue()  // max_num_ref_frames
	r.bit() // gaps_in_frame_num_value_allowed_flag
	wMBs := uint64(r.ue()) + 1
	hMapUnits := uint64(r.ue()) + 1
	frameMBsOnly := uint64(r.bit())
	if frameMBsOnly == 0 {
		r.bit() // mb_adaptive_frame_field_flag
	}
	r.bit() // direct_8x8_inference_flag
	var cl, cr, ct, cb uint64
	if r.bit() == 1 { // frame_cropping_flag
		cl, cr, ct, cb = uint64(r.ue()), uint64(r.ue()), uint64(r.ue()), uint64(r.ue())
	}
	if r.err != nil {
		return SPS{}, r.err
	}
	// Crop units (7-19 to 7-22): chroma samples for 4:2:0 and 4:2:2,
	// doubled vertically for field coding.
	unitX, unitY := uint64(1), 2-frameMBsOnly
	switch s.ChromaFormat {
	case 1:
		unitX, unitY = 2, 2*(2-frameMBsOnly)
	case 2:
		unitX = 2
	}
	w := wMBs * 16
	h := (2 - frameMBsOnly) * hMapUnits * 16
	if w > maxDimension || h > maxDimension || (cl+cr)*unitX >= w || (ct+cb)*unitY >= h {
		return SPS{}, fmt.Errorf("%w: picture %dx%d cropped by %d,%d,%d,%d", ErrMalformed, w, h, cl, cr, ct, cb)
	}
	s.Width, s.Height = int(w-(cl+cr)*unitX), int(h-(ct+cb)*unitY)
	return s, nil
}

// skipScalingList reads past one scaling_list() (7.3.2.1.1.1).
func skipScalingList(r *bitReader, size int) {
	last, next := int64(8), int64(8)
	for range size {
		if next != 0 {
			next = (last + int64(r.se()) + 256) % 256
		}
		if next != 0 {
			last = next
		}
		if r.err != nil {
			return
		}
	}
}

// AVCConfig is the AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1) for one SPS and one PPS, with 4-byte NAL lengths, which is how
// Matroska's V_MPEG4/ISO/AVC tracks carry them.
func AVCConfig(sps, pps []byte, info SPS) ([]byte, error) {
	if len(sps) < 4 || len(sps) > 0xffff || len(pps) == 0 || len(pps) > 0xffff {
		return nil, fmt.Errorf("%w: parameter sets of %d and %d bytes", ErrMalformed, len(sps), len(pps))
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xfc | 3, 0xe0 | 1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	b = append(b, pps...)
	if highProfile(info.Profile) {
		b = append(b, 0xfc|byte(info.ChromaFormat), 0xf8|byte(info.BitDepthLuma-8), 0xf8|byte(info.BitDepthChroma-8), 0)
	}
	return b, nil
}

// unescape removes the emulation prevention bytes (00 00 03 -> 00 00)
// of a NAL unit's payload.
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads the SPS's bits, most significant first. Reading past
// the end sets err and yields zeros, so a parse reads on and checks once.
type bitReader struct {
	b   []byte
	pos int // in bits
	err error
}

func (r *bitReader) bit() uint32 {
	if r.pos >= 8*len(r.b) {
		if r.err == nil {
			r.err = fmt.Errorf("%w: sequence parameter set ends early", ErrMalformed)
		}
		return 0
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v
}

// ue reads an unsigned Exp-Golomb code (9.1).
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.err != nil {
			return 0
		}
		zeros++
		if zeros > maxLeadingZeros {
			r.err = fmt.Errorf("%w: Exp-Golomb code too long", ErrMalformed)
			return 0
		}
	}
	v := uint32(0)
	for range zeros {
		v = v<<1 | r.bit()
	}
	return (1<<zeros - 1) + v
}

// se reads a signed Exp-Golomb code (9.1.1).
func (r *bitReader) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}
