package keyframe

import "testing"

func TestIsKeyframeStart(t *testing.T) {
	tests := []struct {
		name    string
		codec   Codec
		payload []byte
		want    bool
	}{
		{"vp8 key, minimal descriptor", VP8, []byte{0x10, 0x00, 0x9d}, true},
		{"vp8 delta", VP8, []byte{0x10, 0x01}, false},
		{"vp8 key, not start of partition", VP8, []byte{0x00, 0x00}, false},
		{"vp8 key, partition 1", VP8, []byte{0x11, 0x00}, false},
		{"vp8 key, 15-bit picture id", VP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 delta, 15-bit picture id", VP8, []byte{0x90, 0x80, 0x81, 0x23, 0x01}, false},
		{"vp8 key, 7-bit pid + tl0 + tid", VP8, []byte{0x90, 0xe0, 0x05, 0x01, 0x20, 0x00}, true},
		{"vp8 truncated", VP8, []byte{0x90, 0x80}, false},
		{"vp8 empty", VP8, nil, false},
		{"vp9 key start", VP9, []byte{0x88}, true},
		{"vp9 inter frame", VP9, []byte{0xc8}, false},
		{"vp9 key continuation", VP9, []byte{0x80}, false},
		{"h264 idr single nal", H264, []byte{0x65, 0x88}, true},
		{"h264 sps", H264, []byte{0x67, 0x42}, true},
		{"h264 non-idr slice", H264, []byte{0x41, 0x9a}, false},
		{"h264 stap-a sps pps", H264, []byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a sei only", H264, []byte{0x18, 0x00, 0x02, 0x06, 0x05}, false},
		{"h264 stap-a bad size", H264, []byte{0x18, 0x00, 0x09, 0x67}, false},
		{"h264 fu-a idr start", H264, []byte{0x7c, 0x85, 0x00}, true},
		{"h264 fu-a idr middle", H264, []byte{0x7c, 0x05, 0x00}, false},
		{"h264 fu-a non-idr start", H264, []byte{0x7c, 0x81, 0x00}, false},
		{"opus never", Other, []byte{0x10, 0x00}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsKeyframeStart(tc.codec, tc.payload); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromMime(t *testing.T) {
	for mime, want := range map[string]Codec{"video/VP8": VP8, "video/vp9": VP9, "video/H264": H264, "audio/opus": Other} {
		if got := FromMime(mime); got != want {
			t.Errorf("%s: got %v want %v", mime, got, want)
		}
	}
}

// The payload comes from the network: the parser must never panic.
func FuzzIsKeyframeStart(f *testing.F) {
	f.Add(uint8(1), []byte{0x90, 0x80, 0x81, 0x23, 0x00})
	f.Add(uint8(3), []byte{0x18, 0x00, 0x02, 0x67, 0x42})
	f.Add(uint8(3), []byte{0x7c, 0x85})
	f.Add(uint8(2), []byte{0x88})
	f.Fuzz(func(t *testing.T, c uint8, p []byte) {
		IsKeyframeStart(Codec(c%4), p)
	})
}
