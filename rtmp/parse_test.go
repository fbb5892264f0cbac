package rtmp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Real SPS NAL units from x264 (ffmpeg 5.1) at 640x360.
const (
	spsBaseline = "6742c01ed900a02ff970110000030001000003003c0f162e48"
	spsMain     = "674d401ed900a02ff970110000030001000003003c0f162e48"
	spsHigh     = "6764001eacb201405ff2e022000003000200000300781e2c5c90"
)

func TestParseSPSAndProfileLevelID(t *testing.T) {
	cases := []struct {
		name, sps, want string
	}{
		{"x264 baseline 42c0 is offered as constrained baseline", spsBaseline, "42e01e"},
		{"x264 main 4d40 is offered as main", spsMain, "4d001e"},
		{"x264 high", spsHigh, "64001e"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parseSPS(mustHex(t, c.sps))
			if err != nil {
				t.Fatal(err)
			}
			if s.Width != 640 || s.Height != 360 {
				t.Errorf("size %dx%d, want 640x360", s.Width, s.Height)
			}
			got, err := profileLevelID(s)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("profile-level-id %s, want %s", got, c.want)
			}
		})
	}
}

func TestProfileLevelIDNormalisation(t *testing.T) {
	cases := []struct {
		profile, constraints, level byte
		chroma, depth               uint
		want                        string
		wantErr                     bool
	}{
		{66, 0xc0, 0x1f, 1, 8, "42e01f", false}, // x264 baseline
		{66, 0xe0, 0x1f, 1, 8, "42e01f", false}, // constrained baseline as browsers write it
		{66, 0x40, 0x28, 1, 8, "42e028", false},
		{66, 0x00, 0x1f, 1, 8, "42001f", false}, // plain baseline (may use FMO/ASO)
		{66, 0x80, 0x0d, 1, 8, "42000d", false},
		{77, 0x40, 0x1f, 1, 8, "4d001f", false},
		{77, 0x00, 0x29, 1, 8, "4d0029", false},
		{100, 0x00, 0x32, 1, 8, "640032", false},
		{100, 0x0c, 0x1f, 1, 8, "64001f", false}, // constrained high -> high
		{66, 0xc0, 0x00, 1, 8, "42e01f", false},  // level 0 is nonsense: default 3.1
		{110, 0x00, 0x1f, 1, 10, "", true},       // high 10
		{100, 0x00, 0x1f, 1, 10, "", true},       // 10-bit in a high SPS
		{122, 0x00, 0x1f, 2, 8, "", true},        // 4:2:2
		{88, 0x00, 0x1f, 1, 8, "", true},         // extended
	}
	for _, c := range cases {
		got, err := profileLevelID(spsInfo{ProfileIDC: c.profile, Constraints: c.constraints, LevelIDC: c.level, ChromaIDC: c.chroma, BitDepth: c.depth})
		if c.wantErr {
			if !errors.Is(err, ErrUnsupportedVideoCodec) {
				t.Errorf("%02x%02x%02x: err %v, want ErrUnsupportedVideoCodec", c.profile, c.constraints, c.level, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%02x%02x%02x: got %q, %v; want %q", c.profile, c.constraints, c.level, got, err, c.want)
		}
	}
	if got := h264FmtpLine("42e01f"); got != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" {
		t.Errorf("fmtp %q", got)
	}
}

func TestUnescapeRBSP(t *testing.T) {
	cases := map[string]string{
		"000003":     "0000",
		"00000301":   "000001",
		"0000030003": "00000003", // counting restarts after an escape
		"000000":     "000000",
		"0003":       "0003",
		"00000300":   "000000",
	}
	for in, want := range cases {
		if got := hex.EncodeToString(unescapeRBSP(mustHex(t, in))); got != want {
			t.Errorf("unescape %s = %s, want %s", in, got, want)
		}
	}
}

func TestParseVideoTag(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr error
		check   func(t *testing.T, v videoTag)
	}{
		{"avc keyframe nalu", "1701000000aabb", nil, func(t *testing.T, v videoTag) {
			if !v.Keyframe || v.PacketType != avcNALU || v.CompositionTime != 0 || hex.EncodeToString(v.Data) != "aabb" {
				t.Errorf("%+v", v)
			}
		}},
		{"inter frame positive cts", "2701000042cc", nil, func(t *testing.T, v videoTag) {
			if v.Keyframe || v.CompositionTime != 0x42 {
				t.Errorf("%+v", v)
			}
		}},
		{"negative cts sign-extends", "2701ffffde", nil, func(t *testing.T, v videoTag) {
			if v.CompositionTime != -34 {
				t.Errorf("cts %d", v.CompositionTime)
			}
		}},
		{"sequence header", "1700000000014d", nil, func(t *testing.T, v videoTag) {
			if v.PacketType != avcSequenceHeader {
				t.Errorf("%+v", v)
			}
		}},
		{"command frame", "5700", nil, func(t *testing.T, v videoTag) {
			if !v.Command {
				t.Errorf("%+v", v)
			}
		}},
		{"enhanced hevc", "9068766331", ErrUnsupportedVideoCodec, nil},
		{"enhanced av1", "9161763031", ErrUnsupportedVideoCodec, nil},
		{"vp6", "1400", ErrUnsupportedVideoCodec, nil},
		{"empty", "", ErrMalformed, nil},
		{"short avc", "1701", ErrMalformed, nil},
		{"bad avc packet type", "1703000000", ErrMalformed, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := parseVideoTag(mustHex(t, c.in))
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, v)
		})
	}
	_, err := parseVideoTag(mustHex(t, "9068766331"))
	if !strings.Contains(err.Error(), "HEVC") || !strings.Contains(err.Error(), "H.264") {
		t.Errorf("HEVC refusal should name HEVC and the fix: %v", err)
	}
}

func avcRecord(t testing.TB, sps, pps []byte, lengthSizeMinusOne byte) []byte {
	b := []byte{1, sps[1], sps[2], sps[3], 0xfc | lengthSizeMinusOne, 0xe1, byte(len(sps) >> 8), byte(len(sps))}
	b = append(b, sps...)
	b = append(b, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(b, pps...)
}

func TestParseAVCConfig(t *testing.T) {
	sps := mustHex(t, spsBaseline)
	pps := mustHex(t, "68cb83cb20")
	c, err := parseAVCConfig(avcRecord(t, sps, pps, 3))
	if err != nil {
		t.Fatal(err)
	}
	if c.LengthSize != 4 || !bytes.Equal(c.SPS[0], sps) || !bytes.Equal(c.PPS[0], pps) {
		t.Errorf("%+v", c)
	}
	bad := map[string][]byte{
		"short":          {1, 2, 3},
		"version":        append([]byte{2}, avcRecord(t, sps, pps, 3)[1:]...),
		"length size 3":  avcRecord(t, sps, pps, 2),
		"truncated":      avcRecord(t, sps, pps, 3)[:20],
		"pps is not pps": avcRecord(t, sps, sps, 3),
		"no pps":         avcRecord(t, sps, pps, 3)[:8+len(sps)],
	}
	for name, in := range bad {
		if _, err := parseAVCConfig(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestSplitNALUs(t *testing.T) {
	n, err := splitNALUs(mustHex(t, "000000026566000000014100000000"), 4)
	if err != nil || len(n) != 2 || hex.EncodeToString(n[0]) != "6566" || hex.EncodeToString(n[1]) != "41" {
		t.Fatalf("%x %v", n, err)
	}
	if _, err := splitNALUs(mustHex(t, "0000000565"), 4); !errors.Is(err, ErrMalformed) {
		t.Errorf("overlong NALU: %v", err)
	}
	if _, err := splitNALUs(mustHex(t, "0000"), 4); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated length: %v", err)
	}
}

func TestAudioSpecificConfigAndADTS(t *testing.T) {
	cases := []struct {
		asc          string
		rate, ch, ot int
		adtsHeader   string // for a 10-byte frame
	}{
		{"1190", 48000, 2, 2, "fff14c8002ff"},
		{"1210", 44100, 2, 2, "fff1508002ff"},
		{"1208", 44100, 1, 2, "fff1504002ff"},
		{"1188", 48000, 1, 2, "fff14c4002ff"},
		// HE-AAC (SBR, explicit): core AAC-LC at 24 kHz, stereo.
		{"2b1188", 24000, 2, 2, "fff1588002ff"},
	}
	for _, c := range cases {
		cfg, err := parseAudioSpecificConfig(mustHex(t, c.asc))
		if err != nil {
			t.Fatalf("%s: %v", c.asc, err)
		}
		if cfg.SampleRate != c.rate || cfg.Channels != c.ch || cfg.ObjectType != c.ot {
			t.Errorf("%s: %+v", c.asc, cfg)
		}
		frame, err := appendADTS(nil, cfg, make([]byte, 10))
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) != 17 {
			t.Fatalf("ADTS frame length %d", len(frame))
		}
		// header bytes 0..5; byte 6 is buffer fullness/frames
		if got := hex.EncodeToString(frame[:6]); got[:8] != c.adtsHeader[:8] {
			t.Errorf("%s: ADTS header %s, want prefix %s", c.asc, got, c.adtsHeader[:8])
		}
		// frame length field (13 bits) must be 17
		l := int(frame[3]&3)<<11 | int(frame[4])<<3 | int(frame[5])>>5
		if l != 17 {
			t.Errorf("%s: ADTS length %d", c.asc, l)
		}
	}
	for _, bad := range []string{"", "12", "f8", "1780", "1200", "0190"} {
		if _, err := parseAudioSpecificConfig(mustHex(t, bad)); err == nil {
			t.Errorf("ASC %q accepted", bad)
		}
	}
}

func TestOpusSamples(t *testing.T) {
	cases := map[string]int{
		"fc":   960, // CELT FB 20 ms, 1 frame
		"f8":   960,
		"e0":   120,  // CELT 2.5 ms
		"fd":   1920, // 2 frames of 20 ms
		"fb03": 2880, // code 3, 3 x 20 ms
		"08":   960,  // SILK NB 20 ms
		"18":   2880, // SILK 60 ms
		"60":   480,  // hybrid 10 ms
		"1b02": 5760, // 2 x 60 ms = 120 ms
	}
	for in, want := range cases {
		got, err := opusSamples(mustHex(t, in))
		if err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "fb", "fb00", "1b03"} {
		if _, err := opusSamples(mustHex(t, bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
