package webm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/recording/mediatest"
)

func TestAppendSize(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want []byte
	}{
		{0, []byte{0x80}},
		{126, []byte{0xFE}},
		{127, []byte{0x40, 0x7F}}, // 0xFF alone would mean "unknown"
		{16382, []byte{0x7F, 0xFE}},
		{16383, []byte{0x20, 0x3F, 0xFF}},
	} {
		if got := appendSize(nil, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("appendSize(%d) = % x, want % x", tc.n, got, tc.want)
		}
	}
}

func TestVP8KeyframeSize(t *testing.T) {
	key := []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02} // 1280x720
	if w, h, ok := VP8KeyframeSize(key); !ok || w != 1280 || h != 720 {
		t.Fatalf("key frame: %dx%d %v", w, h, ok)
	}
	inter := append([]byte{0x51}, key[1:]...)
	if _, _, ok := VP8KeyframeSize(inter); ok {
		t.Fatal("an interframe has no size")
	}
	if _, _, ok := VP8KeyframeSize(key[:9]); ok {
		t.Fatal("a short frame has no size")
	}
}

func TestWriterRefusesBadInput(t *testing.T) {
	if _, err := NewWriter(&bytes.Buffer{}, Track{Codec: "V_AV1", Width: 1, Height: 1}); err == nil {
		t.Fatal("unsupported codec accepted")
	}
	if _, err := NewWriter(&bytes.Buffer{}, Track{Codec: CodecH264, Width: 1, Height: 1}); err == nil {
		t.Fatal("H.264 without its avcC accepted")
	}
	if _, err := NewWriter(&bytes.Buffer{}, Track{Codec: CodecVP8}); err == nil {
		t.Fatal("video without a size accepted")
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Track{Codec: CodecVP8, Width: 320, Height: 240})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(0, false, []byte{1, 2, 3}); err == nil || buf.Len() != 0 {
		t.Fatalf("a file starting with an interframe: %v, %d bytes written", err, buf.Len())
	}
	if err := w.WriteFrame(time.Second, true, []byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(500*time.Millisecond, false, []byte{0}); !errors.Is(err, ErrNotMonotonic) {
		t.Fatalf("frame going back: %v", err)
	}
}

// An H.264 track makes a Matroska file (WebM allows only VP8, VP9, AV1)
// that carries the avcC as CodecPrivate; a VP8 track stays WebM.
func TestDocTypeAndCodecPrivate(t *testing.T) {
	avcC := []byte{1, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68}
	for _, tc := range []struct {
		track   Track
		docType string
	}{
		{Track{Codec: CodecH264, Width: 320, Height: 240, CodecPrivate: avcC}, "matroska"},
		{Track{Codec: CodecVP8, Width: 320, Height: 240}, "webm"},
	} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, tc.track)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(0, true, []byte{0, 0, 0, 1, 0x65}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if !bytes.Contains(b, appendString(nil, idDocType, tc.docType)) {
			t.Errorf("%s: DocType is not %q", tc.track.Codec, tc.docType)
		}
		hasPrivate := bytes.Contains(b, appendElement(nil, idCodecPrivate, avcC))
		if hasPrivate != (tc.track.CodecPrivate != nil) {
			t.Errorf("%s: CodecPrivate present %v", tc.track.Codec, hasPrivate)
		}
	}
}

func writeFile(t *testing.T, frames [][]byte, w, h int, onEmit func(offset int)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "track.webm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wr, err := NewWriter(f, Track{Codec: CodecVP8, Width: w, Height: h})
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := wr.WriteFrame(time.Duration(i)*40*time.Millisecond, fr[0]&1 == 0, fr); err != nil {
			t.Fatal(err)
		}
		if onEmit != nil {
			onEmit(int(wr.Written()))
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// The file is checked with ffmpeg's own demuxer and decoder, on frames
// ffmpeg encoded (once, shared by the subtests: encoding is the slow part).
func TestVP8File(t *testing.T) {
	frames, w, h := mediatest.VP8(t, 4)
	t.Run("plays whole", func(t *testing.T) { testPlaysWhole(t, frames, w, h) })
	t.Run("cut short plays up to its last cluster", func(t *testing.T) { testCutFile(t, frames, w, h) })
}

func testPlaysWhole(t *testing.T, frames [][]byte, w, h int) {
	if len(frames) != 100 || w != 320 || h != 240 {
		t.Fatalf("encoder gave %d frames of %dx%d", len(frames), w, h)
	}
	if kw, kh, ok := VP8KeyframeSize(frames[0]); !ok || kw != w || kh != h {
		t.Fatalf("first frame's size %dx%d %v", kw, kh, ok)
	}
	path := writeFile(t, frames, w, h, nil)
	pr := mediatest.ProbeFile(t, path)
	if pr.Frames != len(frames) {
		t.Fatalf("ffprobe decodes %d frames, want %d", pr.Frames, len(frames))
	}
	if pr.Duration < 3900*time.Millisecond || pr.Duration > 4100*time.Millisecond {
		t.Fatalf("duration %v, want 4 s", pr.Duration)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}

// A recording cut short (the process killed while writing) plays up to
// its last whole cluster.
func testCutFile(t *testing.T, frames [][]byte, w, h int) {
	var ends []int // file sizes after each emitted cluster
	path := writeFile(t, frames, w, h, func(n int) {
		if len(ends) == 0 || ends[len(ends)-1] != n {
			ends = append(ends, n)
		}
	})
	// ends: the header, then each cluster a key frame closed; the last
	// cluster is written by the final Flush.
	if len(ends) < 4 {
		t.Fatalf("only %d clusters for 4 s: a crash would lose too much", len(ends))
	}
	// Keep three clusters and half of the fourth, as a kill mid-write would.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := ends[3] + (len(b)-ends[3])/2
	if err := os.WriteFile(path, b[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	if n := mediatest.ProbeFile(t, path).Frames; n < 75 {
		t.Fatalf("after the cut ffprobe decodes %d frames, want the 75 of the whole clusters", n)
	}
}

func TestVP9Frame(t *testing.T) {
	frames, w, h := mediatest.VP9(t, 2)
	if key, fw, fh, ok := VP9Frame(frames[0]); !key || !ok || fw != w || fh != h {
		t.Fatalf("first frame: key %v %dx%d ok %v, want a %dx%d key frame", key, fw, fh, ok, w, h)
	}
	keys := 0
	for _, f := range frames {
		key, _, _, ok := VP9Frame(f)
		if !ok {
			t.Fatalf("frame % x not read", f[:4])
		}
		if key {
			keys++
		}
	}
	if keys != 2 {
		t.Fatalf("%d key frames in 2 s, want 2 (one a second)", keys)
	}
	if _, _, _, ok := VP9Frame(frames[0][:5]); ok {
		t.Fatal("a cut key frame header was read")
	}
	if _, _, _, ok := VP9Frame([]byte{0x00}); ok {
		t.Fatal("a byte without the frame marker was read")
	}
}

// FuzzVP9Frame: any bytes are read or refused, never a panic, and a key
// frame has a size.
func FuzzVP9Frame(f *testing.F) {
	f.Add([]byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6})
	f.Add([]byte{0x86, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		key, w, h, ok := VP9Frame(b)
		if key && (!ok || w < 1 || h < 1 || w > 65536 || h > 65536) {
			t.Fatalf("key frame %dx%d ok %v", w, h, ok)
		}
	})
}
