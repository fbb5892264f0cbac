// Package keyframe recognises the first RTP packet of a key frame for the
// video codecs the SFU forwards. A subscriber that fell behind resumes only
// at such a packet, so the decoder never sees a frame whose references it
// missed.
package keyframe

import "strings"

// Codec identifies a payload format. The zero value (Other) never reports
// a key frame, which is right for audio.
type Codec uint8

const (
	Other Codec = iota
	VP8
	VP9
	H264
)

// FromMime maps a MIME type such as "video/VP8" to a Codec.
func FromMime(mime string) Codec {
	switch {
	case strings.EqualFold(mime, "video/VP8"):
		return VP8
	case strings.EqualFold(mime, "video/VP9"):
		return VP9
	case strings.EqualFold(mime, "video/H264"):
		return H264
	}
	return Other
}

// IsKeyframeStart reports whether payload (the RTP payload, after the
// header) starts a key frame.
func IsKeyframeStart(c Codec, payload []byte) bool {
	switch c {
	case VP8:
		return vp8(payload)
	case VP9:
		return vp9(payload)
	case H264:
		return h264(payload)
	}
	return false
}

// vp8 parses the RFC 7741 payload descriptor and then the first byte of
// the VP8 frame header, whose low bit is 0 for a key frame.
func vp8(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	start := b0&0x10 != 0
	partition := b0 & 0x07
	if !start || partition != 0 {
		return false
	}
	i := 1
	if b0&0x80 != 0 { // X: extension byte present
		if len(p) <= i {
			return false
		}
		x := p[i]
		i++
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0
}

// vp9 reads the flexible/non-flexible descriptor's first byte: P (inter
// picture predicted) clear and B (start of frame) set mark a frame that
// needs no earlier picture.
func vp9(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	interPredicted := p[0]&0x40 != 0
	begin := p[0]&0x08 != 0
	return !interPredicted && begin
}

// h264 looks for an IDR slice or an SPS at the start of the packet:
// browsers send SPS+PPS (usually aggregated in a STAP-A) right before the
// IDR, so either marks the point where decoding can start.
func h264(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch nal := p[0] & 0x1f; nal {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit size, NAL unit, repeated
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if t := p[i] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: first fragment of an IDR slice
		if len(p) < 2 {
			return false
		}
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}
