package trackrec

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

// An H.264 track (libx264, baseline, as browsers and RTMP encoders send
// it) arriving 1.5 s into the recording, packetized by pion as a
// publisher's would be (SPS and PPS in a STAP-A, large slices in FU-A),
// reordered, one packet lost: a Matroska file that starts at 1.5 s,
// waits for the next IDR after the loss (and asks for one), and decodes
// without an error.
func TestH264Recording(t *testing.T) {
	units := mediatest.H264(t, 4, "-profile:v", "baseline") // IDR at 0, 1, 2, 3 s
	if len(units) != 100 {
		t.Fatalf("encoder gave %d access units, want 100", len(units))
	}
	start := time.Now()
	var out bytes.Buffer
	v, err := NewVideo(&out, "video/H264", start)
	if err != nil {
		t.Fatal(err)
	}
	pz := rtp.NewPacketizer(1200, 102, 1, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	var pkts []*rtp.Packet
	var frameOf []int
	for i, u := range units {
		for _, p := range pz.Packetize(u, 3600) {
			pkts = append(pkts, p)
			frameOf = append(frameOf, i)
		}
	}
	lost := pkts[slices.Index(frameOf, 30)].SequenceNumber // frame 30's first packet
	wanted := false
	for i := 0; i < len(pkts); i++ {
		if i%7 == 3 && i+1 < len(pkts) {
			pkts[i], pkts[i+1] = pkts[i+1], pkts[i] // reordered on the way
		}
		if pkts[i].SequenceNumber == lost {
			continue
		}
		arrival := start.Add(1500*time.Millisecond + time.Duration(frameOf[i])*40*time.Millisecond)
		want, err := v.Push(pkts[i], arrival)
		if err != nil {
			t.Fatal(err)
		}
		if want && frameOf[i] > 30 {
			wanted = true
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if !wanted {
		t.Fatal("the loss did not ask for a key frame")
	}
	st := v.Stats()
	if st.Frames != 80 || st.Skipped != 19 { // frames 31-49 wait for the IDR at 50; 30 never completes
		t.Fatalf("stats %+v, want 80 frames written and 19 skipped", st)
	}
	path := filepath.Join(t.TempDir(), "video.mkv")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pr := mediatest.ProbeFile(t, path)
	if pr.Frames != 80 {
		t.Fatalf("ffprobe decodes %d frames, want 80", pr.Frames)
	}
	if pr.StartTime < 1450*time.Millisecond || pr.StartTime > 1550*time.Millisecond {
		t.Fatalf("starts at %v, want 1.5 s (on the recording's timeline)", pr.StartTime)
	}
	// 100 frames of 40 ms from 1.5 s: the last one at 5.46 s.
	if _, last, _ := mediatest.VideoSpan(t, path); last < 5420*time.Millisecond || last > 5500*time.Millisecond {
		t.Fatalf("last frame at %v, want 5.46 s", last)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
	info := mediatest.StreamInfo(t, path)
	if info != "h264 320x240 matroska,webm" {
		t.Fatalf("ffprobe says %q, want h264 320x240 in Matroska", info)
	}
}

// A track that starts with frames but no parameter sets (they were lost,
// or the publisher sends them only with its IDRs) waits for an IDR that
// comes with them.
func TestH264WaitsForParameterSets(t *testing.T) {
	units := mediatest.H264(t, 2, "-profile:v", "main")
	start := time.Now()
	var out bytes.Buffer
	v, err := NewVideo(&out, "video/h264", start)
	if err != nil {
		t.Fatal(err)
	}
	pz := rtp.NewPacketizer(1200, 102, 1, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	for i, u := range units {
		if i < 10 {
			continue // joined late: the first IDR and its parameter sets are gone
		}
		for _, p := range pz.Packetize(u, 3600) {
			if _, err := v.Push(p, start.Add(time.Duration(i)*40*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.Frames != 25 || st.Skipped != 15 {
		t.Fatalf("stats %+v, want the 25 frames from the second IDR and 15 skipped", st)
	}
	path := filepath.Join(t.TempDir(), "late.mkv")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}

// A fragmented unit that never ends (a broken or hostile publisher) is
// dropped when the next one starts, rather than collected forever.
func TestH264DepacketizerDropsUnfinishedFragments(t *testing.T) {
	d := &h264Depacketizer{}
	fu := func(start, end bool, body ...byte) []byte {
		h := byte(5)
		if start {
			h |= 0x80
		}
		if end {
			h |= 0x40
		}
		return append([]byte{0x60 | 28, h}, body...)
	}
	for range 1000 {
		if _, err := d.Unmarshal(fu(true, false, bytes.Repeat([]byte{1}, 1000)...)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Unmarshal(fu(true, false, 2, 2)); err != nil {
		t.Fatal(err)
	}
	got, err := d.Unmarshal(fu(false, true, 3))
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 4, 0x65, 2, 2, 3}; !bytes.Equal(got, want) {
		t.Fatalf("unit % x, want % x (only the last started unit)", got[:min(len(got), 16)], want)
	}
	if n := binary.BigEndian.Uint32(got); n != 4 {
		t.Fatalf("length %d", n)
	}
}

func TestUnknownVideoCodec(t *testing.T) {
	if _, err := NewVideo(&bytes.Buffer{}, "video/AV1", time.Now()); err == nil || !strings.Contains(err.Error(), "AV1") {
		t.Fatalf("AV1: %v", err)
	}
	if FileExtension("video/H264") != ".mkv" || FileExtension("video/VP8") != ".webm" || FileExtension("video/VP9") != ".webm" || FileExtension("video/AV1") != "" {
		t.Fatal("file extensions")
	}
}

// FuzzVideoH264: whatever RTP payloads a publisher sends as H.264, the
// recorder neither panics nor fails (a bad frame is a lost one), and
// what it writes starts with a Matroska header.
func FuzzVideoH264(f *testing.F) {
	f.Add([]byte{0x78, 0, 4, 0x67, 0x42, 0xc0, 0x0d, 0, 2, 0x68, 0xce, 0xff, 0x65, 0x88, 0xff, 0x41, 0x9a})
	f.Add([]byte{0x7c, 0x85, 1, 2, 3, 0xff, 0x7c, 0x45, 4, 0xff, 0x41, 0x9a})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		start := time.Unix(1000, 0)
		v, err := NewVideo(&out, "video/H264", start)
		if err != nil {
			t.Fatal(err)
		}
		// 0xff separates packets; each packet is its own frame.
		packets := bytes.Split(b, []byte{0xff})
		if len(packets) > 64 {
			return // longer runs explore pion's reorder window, not this code
		}
		for i, payload := range packets {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000, Marker: true}, Payload: payload}
			if _, err := v.Push(p, start.Add(time.Duration(i)*33*time.Millisecond)); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if out.Len() > 0 && !bytes.HasPrefix(out.Bytes(), []byte{0x1a, 0x45, 0xdf, 0xa3}) {
			t.Fatalf("output starts % x", out.Bytes()[:4])
		}
	})
}
