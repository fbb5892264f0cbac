package trackrec

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

// A VP9 track (libvpx, realtime, as a browser sends it) arriving 1.5 s
// into the recording, reordered, one packet lost: a WebM file that starts
// at 1.5 s, waits for the next key frame after the loss, and decodes
// without an error.
func TestVP9Recording(t *testing.T) {
	frames, _, _ := mediatest.VP9(t, 4) // key frames at 0, 1, 2, 3 s
	start := time.Now()
	var out bytes.Buffer
	v, err := NewVideo(&out, "video/VP9", start)
	if err != nil {
		t.Fatal(err)
	}
	pz := rtp.NewPacketizer(1200, 98, 1, &codecs.VP9Payloader{}, rtp.NewRandomSequencer(), 90000)
	var pkts []*rtp.Packet
	var frameOf []int
	for i, f := range frames {
		for _, p := range pz.Packetize(f, 3600) {
			pkts = append(pkts, p)
			frameOf = append(frameOf, i)
		}
	}
	lost := pkts[slices.Index(frameOf, 30)].SequenceNumber // frame 30's first packet
	for i := 0; i < len(pkts); i++ {
		if i%7 == 3 && i+1 < len(pkts) {
			pkts[i], pkts[i+1] = pkts[i+1], pkts[i] // reordered on the way
		}
		if pkts[i].SequenceNumber == lost {
			continue
		}
		if _, err := v.Push(pkts[i], start.Add(1500*time.Millisecond+time.Duration(frameOf[i])*40*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Frames != 80 || st.Skipped != 19 {
		t.Fatalf("stats %+v, want 80 frames written and 19 skipped", st)
	}
	path := filepath.Join(t.TempDir(), "video.webm")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if info := mediatest.StreamInfo(t, path); info != "vp9 320x240 matroska,webm" {
		t.Fatalf("ffprobe says %q, want vp9 320x240 in WebM", info)
	}
	pr := mediatest.ProbeFile(t, path)
	if pr.Frames != 80 || pr.StartTime < 1450*time.Millisecond || pr.StartTime > 1550*time.Millisecond {
		t.Fatalf("ffprobe decodes %d frames from %v, want 80 from 1.5 s", pr.Frames, pr.StartTime)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}

// A picture sent in two spatial layers (SVC): the recording keeps the
// base layer's frame and drops the upper layer's.
func TestVP9DepacketizerKeepsBaseLayer(t *testing.T) {
	d := &vp9Depacketizer{}
	// I=0, L=1, F=0, B=1, E=1; layer byte (TID 0, U 0, SID, D 0), and
	// TL0PICIDX as non-flexible mode has it.
	base := []byte{0x2c, 0 << 1, 7, 0xaa}
	upper := []byte{0x2c, 1 << 1, 7, 0xbb}
	if got, err := d.Unmarshal(base); err != nil || !bytes.Equal(got, []byte{0xaa}) {
		t.Fatalf("base layer: % x %v", got, err)
	}
	if got, err := d.Unmarshal(upper); err != nil || len(got) != 0 {
		t.Fatalf("upper layer: % x %v, want nothing", got, err)
	}
}
