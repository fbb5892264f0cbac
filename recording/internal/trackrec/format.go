package trackrec

import (
	"fmt"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/internal/h264"
	"github.com/parleyhq/parley/recording/internal/webm"
)

// videoFormat is what differs between the video codecs a Video records:
// how RTP payloads become frames, which frames are key frames, and what
// the file's track says. The timeline, the reorder window and the waits
// for key frames are Video's, the same for every codec.
type videoFormat interface {
	depacketizer() rtp.Depacketizer
	// frame looks at one frame from the depacketizer. out is what to
	// write (nil: nothing, such as parameter sets alone); ok false: the
	// frame cannot be decoded, which counts as a loss.
	frame(data []byte) (out []byte, key, ok bool)
	// track describes the file from its first key frame; false: the
	// file cannot start at this one (no size or parameter sets yet).
	track(key []byte) (webm.Track, bool)
}

// newVideoFormat picks the format for an RTP MIME type.
func newVideoFormat(mime string) (videoFormat, error) {
	switch strings.ToLower(mime) {
	case "video/vp8":
		return vp8Format{}, nil
	case "video/vp9":
		return vp9Format{}, nil
	case "video/h264":
		return &h264Format{}, nil
	}
	return nil, fmt.Errorf("trackrec: no video format for %q", mime)
}

// FileExtension is the extension of the file a video codec is recorded
// to: .webm for VP8 and VP9, .mkv for H.264 (Matroska; WebM does not allow it),
// "" for a codec not recorded.
func FileExtension(mime string) string {
	f, err := newVideoFormat(mime)
	if err != nil {
		return ""
	}
	if _, ok := f.(*h264Format); ok {
		return ".mkv"
	}
	return ".webm"
}

// vp8Format: VP8 (RFC 7741) into WebM.
type vp8Format struct{}

func (vp8Format) depacketizer() rtp.Depacketizer { return &codecs.VP8Packet{} }

func (vp8Format) frame(data []byte) ([]byte, bool, bool) {
	if len(data) == 0 {
		return nil, false, true
	}
	return data, data[0]&1 == 0, true // the frame tag's inverse key frame flag
}

func (vp8Format) track(key []byte) (webm.Track, bool) {
	w, h, ok := webm.VP8KeyframeSize(key)
	return webm.Track{Codec: webm.CodecVP8, Width: w, Height: h}, ok
}

// vp9Format: VP9 (RFC 9628) into WebM. A publisher sending spatial
// layers (SVC) sends every layer's frame of a picture under one
// timestamp; the recording keeps the base layer, which decodes on its
// own (its depacketizer drops the others), and so records a layered
// camera at its lowest resolution.
type vp9Format struct{}

func (vp9Format) depacketizer() rtp.Depacketizer { return &vp9Depacketizer{} }

func (vp9Format) frame(data []byte) ([]byte, bool, bool) {
	if len(data) == 0 {
		return nil, false, true
	}
	key, _, _, ok := webm.VP9Frame(data)
	return data, key, ok
}

func (vp9Format) track(key []byte) (webm.Track, bool) {
	_, w, h, ok := webm.VP9Frame(key)
	return webm.Track{Codec: webm.CodecVP9, Width: w, Height: h}, ok
}

// vp9Depacketizer is pion's, keeping spatial layer 0 only.
type vp9Depacketizer struct {
	codecs.VP9Packet
}

func (d *vp9Depacketizer) Unmarshal(payload []byte) ([]byte, error) {
	out, err := d.VP9Packet.Unmarshal(payload)
	if err != nil {
		return nil, err
	}
	if d.L && d.SID > 0 {
		return []byte{}, nil
	}
	return out, nil
}

// h264Format: H.264 (RFC 6184) into Matroska, frames as AVC (4-byte NAL
// lengths), the file's avcC from the first parameter sets seen. SPS and
// PPS stay in the frames too: a publisher that changes resolution (a
// simulcast layer switch) sends new ones before its next IDR, and
// decoders take them from there.
type h264Format struct {
	sps, pps []byte // the latest seen, until the file's track is made
}

func (*h264Format) depacketizer() rtp.Depacketizer { return &h264Depacketizer{} }

func (f *h264Format) frame(data []byte) ([]byte, bool, bool) {
	key, vcl := false, false
	err := h264.NALs(data, func(nal []byte) bool {
		switch t := h264.Type(nal); {
		case t == h264.TypeSPS:
			f.sps = append(f.sps[:0], nal...)
		case t == h264.TypePPS:
			f.pps = append(f.pps[:0], nal...)
		case t == h264.TypeIDR:
			key, vcl = true, true
		case t >= h264.TypeSlice && t < h264.TypeIDR:
			vcl = true
		}
		return true
	})
	if err != nil {
		return nil, false, false
	}
	if !vcl {
		return nil, false, true // parameter sets or SEI alone: no picture
	}
	return data, key, true
}

func (f *h264Format) track([]byte) (webm.Track, bool) {
	if f.sps == nil || f.pps == nil {
		return webm.Track{}, false
	}
	info, err := h264.ParseSPS(f.sps)
	if err != nil {
		return webm.Track{}, false
	}
	avcC, err := h264.AVCConfig(f.sps, f.pps, info)
	if err != nil {
		return webm.Track{}, false
	}
	return webm.Track{Codec: webm.CodecH264, Width: info.Width, Height: info.Height, CodecPrivate: avcC}, true
}

// h264Depacketizer is pion's, handing out AVC form, with one guard:
// pion collects an FU-A's fragments until one has the end bit, so a
// publisher that never sets it would grow the buffer forever; a new
// start throws the unfinished unit away (it could not be decoded).
type h264Depacketizer struct {
	codecs.H264Packet
}

func (d *h264Depacketizer) Unmarshal(payload []byte) ([]byte, error) {
	const fuA, startBit = 28, 0x80
	if !d.IsAVC || len(payload) >= 2 && payload[0]&0x1f == fuA && payload[1]&startBit != 0 {
		d.H264Packet = codecs.H264Packet{IsAVC: true}
	}
	return d.H264Packet.Unmarshal(payload)
}
