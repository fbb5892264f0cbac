package rtmp

import (
	"errors"
	"fmt"

	flvtag "github.com/yutopp/go-flv/tag"
)

// Errors for publisher input that the server answers with a refusal.
var (
	ErrUnsupportedVideoCodec = errors.New("unsupported video codec")
	ErrUnsupportedAudioCodec = errors.New("unsupported audio codec")
	ErrMalformed             = errors.New("malformed media")
)

// avcPacketType values of a legacy FLV AVC video tag.
const (
	avcSequenceHeader = 0
	avcNALU           = 1
	avcEndOfSequence  = 2
)

// videoTag is a parsed FLV VIDEODATA body. Data aliases the input.
type videoTag struct {
	Keyframe        bool
	PacketType      byte  // avcSequenceHeader, avcNALU, avcEndOfSequence
	CompositionTime int32 // ms, PTS - DTS
	Data            []byte
	Command         bool // video info/command frame: carries no picture
}

// parseVideoTag parses an FLV video tag body. Only legacy AVC is accepted:
// the WebRTC side carries H.264 and we never transcode video. Enhanced-RTMP
// (ex-header) codecs are named in the error so the user knows what to change.
func parseVideoTag(b []byte) (videoTag, error) {
	var t videoTag
	if len(b) < 1 {
		return t, fmt.Errorf("%w: empty video tag", ErrMalformed)
	}
	if b[0]&0x80 != 0 {
		// Enhanced RTMP: bit 7 is IsExHeader, then a FourCC follows.
		if len(b) < 5 {
			return t, fmt.Errorf("%w: short enhanced-RTMP video header", ErrMalformed)
		}
		return t, fmt.Errorf("%w: enhanced-RTMP %q; Parley accepts H.264 only: set the encoder to H.264/AVC (x264) in OBS Settings > Output", ErrUnsupportedVideoCodec, fourCCName(b[1:5]))
	}
	frameType := flvtag.FrameType(b[0] >> 4)
	codec := flvtag.CodecID(b[0] & 0x0f)
	if frameType == flvtag.FrameTypeVideoInfoCommandFrame {
		t.Command = true
		return t, nil
	}
	if codec != flvtag.CodecIDAVC {
		return t, fmt.Errorf("%w: FLV codec id %d; Parley accepts H.264 only", ErrUnsupportedVideoCodec, codec)
	}
	if len(b) < 5 {
		return t, fmt.Errorf("%w: short AVC video tag (%d bytes)", ErrMalformed, len(b))
	}
	t.Keyframe = frameType == flvtag.FrameTypeKeyFrame
	t.PacketType = b[1]
	if t.PacketType > avcEndOfSequence {
		return t, fmt.Errorf("%w: AVC packet type %d", ErrMalformed, t.PacketType)
	}
	// SI24 composition time, sign-extended.
	ct := int32(uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]))
	if ct&0x800000 != 0 {
		ct -= 1 << 24
	}
	t.CompositionTime = ct
	t.Data = b[5:]
	return t, nil
}

func fourCCName(b []byte) string {
	switch string(b) {
	case "hvc1":
		return "HEVC (hvc1)"
	case "av01":
		return "AV1 (av01)"
	case "vp09":
		return "VP9 (vp09)"
	case "avc1":
		return "H.264 over enhanced RTMP (avc1)"
	}
	out := make([]byte, 0, 4)
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out = append(out, c)
	}
	return string(out)
}

// aacPacketType values of an FLV AAC audio tag.
const (
	aacSequenceHeader = 0
	aacRaw            = 1
)

// audioTag is a parsed FLV AUDIODATA body for AAC. Data aliases the input.
type audioTag struct {
	PacketType byte
	Data       []byte
}

// parseAudioTag parses an FLV audio tag body; only AAC is accepted.
func parseAudioTag(b []byte) (audioTag, error) {
	var t audioTag
	if len(b) < 1 {
		return t, fmt.Errorf("%w: empty audio tag", ErrMalformed)
	}
	format := flvtag.SoundFormat(b[0] >> 4)
	if format != flvtag.SoundFormatAAC {
		return t, fmt.Errorf("%w: FLV sound format %d; Parley accepts AAC only", ErrUnsupportedAudioCodec, format)
	}
	if len(b) < 2 {
		return t, fmt.Errorf("%w: short AAC audio tag", ErrMalformed)
	}
	t.PacketType = b[1]
	if t.PacketType > aacRaw {
		return t, fmt.Errorf("%w: AAC packet type %d", ErrMalformed, t.PacketType)
	}
	t.Data = b[2:]
	return t, nil
}
