package h264

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/parleyhq/parley/recording/mediatest"
)

// avc turns an Annex B access unit (4-byte start codes, as
// mediatest.H264 makes them) into AVC form, as pion hands frames out.
func avc(unit []byte) []byte {
	var out []byte
	for _, nal := range bytes.Split(unit, []byte{0, 0, 0, 1})[1:] {
		out = binary.BigEndian.AppendUint32(out, uint32(len(nal)))
		out = append(out, nal...)
	}
	return out
}

func paramSets(t *testing.T, unit []byte) (sps, pps []byte, types []byte) {
	t.Helper()
	if err := NALs(avc(unit), func(nal []byte) bool {
		types = append(types, Type(nal))
		switch Type(nal) {
		case TypeSPS:
			sps = nal
		case TypePPS:
			pps = nal
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return sps, pps, types
}

// x264's parameter sets for the sizes and profiles a browser or an RTMP
// encoder sends, including sizes that are not whole macroblocks (the
// SPS crops them) and a High profile with its scaling-free 4:2:0.
func TestParseSPSFromX264(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		width, height int
		profile       byte
	}{
		{[]string{"-profile:v", "baseline"}, 320, 240, 66},
		{[]string{"-profile:v", "main", "-s", "642x362"}, 642, 362, 77},
		{[]string{"-profile:v", "high", "-s", "1280x720"}, 1280, 720, 100},
		{[]string{"-profile:v", "high444", "-pix_fmt", "yuv444p", "-s", "176x144"}, 176, 144, 244},
	} {
		units := mediatest.H264(t, 1, tc.args...)
		sps, pps, types := paramSets(t, units[0])
		if sps == nil || pps == nil || !bytes.Contains(types, []byte{TypeIDR}) {
			t.Fatalf("%v: the first access unit has NAL types %v, want SPS, PPS and an IDR slice", tc.args, types)
		}
		s, err := ParseSPS(sps)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if s.Width != tc.width || s.Height != tc.height || s.Profile != tc.profile {
			t.Errorf("%v: SPS says %dx%d profile %d, want %dx%d profile %d", tc.args, s.Width, s.Height, s.Profile, tc.width, tc.height, tc.profile)
		}
		cfg, err := AVCConfig(sps, pps, s)
		if err != nil {
			t.Fatal(err)
		}
		// avcC: version 1, profile, 4-byte lengths, one SPS, one PPS.
		if cfg[0] != 1 || cfg[1] != tc.profile || cfg[4] != 0xff || cfg[5] != 0xe1 || !bytes.Contains(cfg, sps) || !bytes.Contains(cfg, pps) {
			t.Errorf("%v: avcC % x", tc.args, cfg[:6])
		}
		if highProfile(tc.profile) && cfg[len(cfg)-4] != 0xfc|byte(s.ChromaFormat) {
			t.Errorf("%v: avcC's High profile extension % x, chroma format %d", tc.args, cfg[len(cfg)-4:], s.ChromaFormat)
		}
	}
}

func TestParseSPSRejects(t *testing.T) {
	sps, _, _ := paramSets(t, mediatest.H264(t, 1, "-profile:v", "baseline")[0])
	for name, b := range map[string][]byte{
		"empty":     nil,
		"a PPS":     {0x68, 0xce, 0x38, 0x80},
		"truncated": sps[:6],
		"huge": {0x67, 66, 0, 30, 0x80, // seq_parameter_set_id 0
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, // then an Exp-Golomb code with too many zeros
	} {
		if _, err := ParseSPS(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestNALsRejectsBadLengths(t *testing.T) {
	for _, b := range [][]byte{{0, 0}, {0, 0, 0, 5, 1, 2}, {0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 1}} {
		if err := NALs(b, func([]byte) bool { return true }); !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: %v, want ErrMalformed", b, err)
		}
	}
}

func TestSeedsParse(t *testing.T) {
	if s, err := ParseSPS(seedSPS); err != nil || s.Width != 320 || s.Height != 240 {
		t.Fatalf("seed: %+v %v", s, err)
	}
}

func TestUnescape(t *testing.T) {
	got := unescape([]byte{1, 0, 0, 3, 0, 0, 3, 3, 0, 0, 2})
	if want := []byte{1, 0, 0, 0, 0, 3, 0, 0, 2}; !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
}

// x264's baseline SPS for 320x240, a fuzz seed.
var seedSPS = []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80}

// FuzzParseSPS: any bytes parse or fail with ErrMalformed, never panic,
// and a parsed size is within the limits.
func FuzzParseSPS(f *testing.F) {
	f.Add(seedSPS)
	f.Add([]byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x83, 0x19, 0x60}) // High, 1280x720
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSPS(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if s.Width <= 0 || s.Height <= 0 || s.Width > maxDimension || s.Height > maxDimension {
			t.Fatalf("parsed size %dx%d", s.Width, s.Height)
		}
		if _, err := AVCConfig(b, []byte{0x68}, s); err != nil && len(b) <= 0xffff {
			t.Fatalf("avcC of a parsed SPS: %v", err)
		}
	})
}

// FuzzNALs: the units handed out lie inside the frame and cover it.
func FuzzNALs(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		err := NALs(b, func(nal []byte) bool {
			if len(nal) == 0 {
				t.Fatal("empty unit handed out")
			}
			total += 4 + len(nal)
			return true
		})
		if err == nil && total != len(b) {
			t.Fatalf("units cover %d of %d bytes", total, len(b))
		}
	})
}
