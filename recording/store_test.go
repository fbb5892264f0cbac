package recording

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/parleyhq/parley/recording/mediatest"
)

func testConfig() Config {
	c := DefaultConfig()
	c.SyncInterval = 100 * time.Millisecond
	c.Compose = false // TestComposeAfterStop turns it on
	return c
}

func openStore(t testing.TB, cfg Config, dir string) *Store {
	t.Helper()
	s, err := Open(cfg, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// media is a few seconds of a camera and a microphone as RTP packets.
type media struct {
	video, audio []*rtp.Packet
}

func makeMedia(t testing.TB, seconds int) media {
	t.Helper()
	frames, _, _ := mediatest.VP8(t, seconds)
	vp := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	var m media
	for _, f := range frames {
		m.video = append(m.video, vp.Packetize(f, 3600)...)
	}
	ap := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	for _, p := range mediatest.Opus(t, seconds) {
		m.audio = append(m.audio, ap.Packetize(p, 960)...)
	}
	return m
}

// h264Packets is a camera as an H.264 publisher (an RTMP encoder, a
// browser preferring H.264) sends it.
func h264Packets(t *testing.T, seconds int) []*rtp.Packet {
	t.Helper()
	hp := rtp.NewPacketizer(1200, 102, 3, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	var pkts []*rtp.Packet
	for _, u := range mediatest.H264(t, seconds, "-profile:v", "baseline") {
		pkts = append(pkts, hp.Packetize(u, 3600)...)
	}
	return pkts
}

func addTracks(t *testing.T, r *Recording) (v, a *TrackWriter) {
	t.Helper()
	v, err := r.AddTrack(TrackInfo{SID: "TR_cam", Identity: "ada", Name: "Ada", Kind: "video", Source: "camera", Codec: "video/VP8"})
	if err != nil {
		t.Fatal(err)
	}
	a, err = r.AddTrack(TrackInfo{SID: "TR_mic", Identity: "ada", Name: "Ada", Kind: "audio", Source: "microphone", Codec: "audio/opus", Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	return v, a
}

func feed(t *testing.T, w *TrackWriter, pkts []*rtp.Packet) {
	t.Helper()
	if err := playLive(w, pkts); err != nil {
		t.Fatal(err)
	}
}

// playLive gives w the packets as a live publisher sends them: each
// arrives when its timestamp says, from now on, without the test waiting
// for it. (A live track never brings seconds of media at once; a burst
// is a backlog held up on the way, and is placed to end when it came.)
// It stops at the first packet refused.
func playLive(w *TrackWriter, pkts []*rtp.Packet) error {
	rate := time.Duration(48000)
	if w.video != nil {
		rate = 90000
	}
	base, first := time.Now(), pkts[0].Timestamp
	for _, p := range pkts {
		arrival := base.Add(time.Duration(int32(p.Timestamp-first)) * time.Second / rate)
		if err := w.push(&rtp.Packet{Header: p.Header.Clone(), Payload: append([]byte(nil), p.Payload...)}, arrival); err != nil {
			return err
		}
	}
	return nil
}

func TestRecordAndList(t *testing.T) {
	m := makeMedia(t, 3)
	s := openStore(t, testConfig(), t.TempDir())
	r, err := s.Start("standup", "ada", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("standup", "bob", nil); !errors.Is(err, ErrRecording) {
		t.Fatalf("second recording of a room: %v", err)
	}
	if _, err := r.AddTrack(TrackInfo{SID: "TR_av1", Kind: "video", Codec: "video/AV1"}); !errors.Is(err, ErrCodec) {
		t.Fatalf("AV1 track: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "standup", r.ID())); len(entries) != 1 {
		t.Fatalf("a refused track left files: %v", entries) // the manifest only
	}
	v, a := addTracks(t, r)
	asked := 0
	v.OnKeyframeNeeded(func() { asked++ })
	feed(t, v, m.video[3:]) // joined mid-frame: a key frame is asked for
	feed(t, a, m.audio)
	if asked == 0 {
		t.Fatal("starting on a delta frame asked for no key frame")
	}
	final, err := s.Stop("standup")
	if err != nil {
		t.Fatal(err)
	}
	if final.State != StateComplete || final.StopReason != ReasonStopped || final.Ended == nil || len(final.Tracks) != 2 || final.Bytes == 0 {
		t.Fatalf("manifest %+v", final)
	}
	if _, err := v.WriteRTP(&m.video[0].Header, m.video[0].Payload); err == nil {
		t.Fatal("a write after stop was accepted")
	}
	for _, tr := range final.Tracks {
		path, err := s.Path("standup", final.ID, tr.File)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Frames == 0 || tr.EndMs <= tr.StartMs {
			t.Fatalf("track %+v", tr)
		}
		if e := mediatest.DecodeErrors(t, path); e != "" {
			t.Fatalf("%s: %s", tr.File, e)
		}
	}
	list, err := s.List("")
	if err != nil || len(list) != 1 || list[0].ID != final.ID {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, bad := range []string{"../manifest.json", "missing.webm", ""} {
		if _, err := s.Path("standup", final.ID, bad); !errors.Is(err, ErrNotFound) {
			t.Fatalf("path %q: %v", bad, err)
		}
	}
	if _, err := s.Get("..", final.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("room '..': %v", err)
	}
	if err := s.Delete("standup", final.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List("standup"); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
	if s.used.Load() != 0 {
		t.Fatalf("disk use after delete %d", s.used.Load())
	}
}

// The process dies mid-recording: the files on disk play, and the store
// that opens them next marks the recording incomplete.
func TestCrashLeavesIncompletePlayableRecording(t *testing.T) {
	m := makeMedia(t, 4)
	dir := t.TempDir()
	s := openStore(t, testConfig(), dir)
	r, err := s.Start("r", "ada", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, a := addTracks(t, r)
	feed(t, v, m.video)
	feed(t, a, m.audio)
	time.Sleep(300 * time.Millisecond) // a few syncs
	// What a SIGKILL leaves: the directory as it is now.
	crashed := t.TempDir()
	copyTree(t, dir, crashed)

	s2 := openStore(t, testConfig(), crashed)
	got, err := s2.Get("r", r.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateIncomplete || got.Ended == nil {
		t.Fatalf("after the crash: %+v", got)
	}
	for _, tr := range got.Tracks {
		path, _ := s2.Path("r", got.ID, tr.File)
		if tr.Kind == "video" {
			if n := mediatest.ProbeFile(t, path).Frames; n < 75 {
				t.Fatalf("video decodes %d frames of 100", n)
			}
		} else if d := mediatest.AudioDuration(t, path); d < 3*time.Second {
			t.Fatalf("audio decodes %v of 4 s", d)
		}
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSizeLimitStopsRecording(t *testing.T) {
	m := makeMedia(t, 3)
	cfg := testConfig()
	cfg.MaxRecordingBytes = 40 << 10
	s := openStore(t, cfg, t.TempDir())
	stopped := make(chan Manifest, 1)
	r, err := s.Start("r", "ada", func(m Manifest) { stopped <- m })
	if err != nil {
		t.Fatal(err)
	}
	v, _ := addTracks(t, r)
	_ = playLive(v, m.video) // refused once the recording stopped
	select {
	case got := <-stopped:
		if got.StopReason != ReasonSize || got.State != StateComplete {
			t.Fatalf("stopped with %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the recording went past its size limit")
	}
	if s.Active("r") != nil {
		t.Fatal("still active after its limit")
	}
}

func TestBudgetRefusesNewRecording(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old.bin"), make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.MaxTotalBytes, cfg.MaxRecordingBytes = 2048, 1024
	s := openStore(t, cfg, dir)
	if _, err := s.Start("r", "ada", nil); !errors.Is(err, ErrBudget) {
		t.Fatalf("start over budget: %v", err)
	}
	if _, err := s.Start("../x", "ada", nil); err == nil {
		t.Fatal("room name leaving the directory accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.MaxRecordingBytes = c.MaxTotalBytes + 1
	if err := c.Validate(); err == nil {
		t.Fatal("a recording larger than the budget accepted")
	}
}
