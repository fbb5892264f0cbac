// Package keyframe recognises the first RTP packet of a key frame for the
// video codecs the SFU forwards. A subscriber that fell behind resumes only
// at such a packet, so the decoder never sees a frame whose references it
// missed.
package keyframe

import (
	"strings"

	"github.com/parleyhq/parley/sfu/internal/vp8"
)

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
		return isVP8(payload)
	case VP9:
		return vp9(payload)
	case H264:
		return h264(payload)
	}
	return false
}

// isVP8 parses the RFC 7741 payload descriptor (package vp8) and then
// the first byte of the VP8 frame header, whose low bit is 0 for a key
// frame.
func isVP8(p []byte) bool {
	var d vp8.Descriptor
	return d.Unmarshal(p) == nil && d.Keyframe
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
