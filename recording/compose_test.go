package recording

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/recording/mediatest"
)

func TestLayout(t *testing.T) {
	_, cams := layout(3, false)
	// 2x2 grid, the last row's one tile centred.
	want := []tile{{0, 0, 640, 360}, {640, 0, 640, 360}, {320, 360, 640, 360}}
	for i := range want {
		if cams[i] != want[i] {
			t.Fatalf("3 cameras: %v, want %v", cams, want)
		}
	}
	scr, cams := layout(2, true)
	if scr.w != 960 || len(cams) != 2 || cams[0].x != 960 || cams[1].y != cams[0].h {
		t.Fatalf("screen %v cameras %v", scr, cams)
	}
}

func TestLabelKeepsFilterSyntaxOut(t *testing.T) {
	for in, want := range map[string]string{
		"Ada Lovelace":              "Ada Lovelace",
		"x';drawtext=text='pwned":   "xdrawtexttextpwned",
		"Zoë [host]: 100%":          "Zoë host 100",
		strings.Repeat("long ", 20): "long long long long long long long long",
	} {
		if got := label(in); got != want {
			t.Errorf("label(%q) = %q, want %q", in, got, want)
		}
	}
}

// Two cameras (one joining a second later, in H.264 and so in a
// Matroska file) and a microphone make one MP4: H.264 and AAC, as long
// as the recording, decodable end to end, with sound.
func TestComposeMakesPlayableMP4(t *testing.T) {
	m := makeMedia(t, 3)
	bob := h264Packets(t, 3)
	s := openStore(t, testConfig(), t.TempDir())
	r, err := s.Start("r", "ada", nil)
	if err != nil {
		t.Fatal(err)
	}
	v1, a1 := addTracks(t, r)
	feed(t, v1, m.video)
	feed(t, a1, m.audio)
	time.Sleep(time.Second)
	v2, err := r.AddTrack(TrackInfo{SID: "TR_cam2", Identity: "bob", Name: "Bob", Kind: "video", Source: "camera", Codec: "video/H264"})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, v2, bob)
	final, err := s.Stop("r")
	if err != nil {
		t.Fatal(err)
	}
	if f := final.Tracks[2].File; !strings.HasSuffix(f, ".mkv") || final.Tracks[2].Frames != 75 {
		t.Fatalf("Bob's H.264 camera: %+v, want 75 frames in a .mkv", final.Tracks[2])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, err := s.Compose(ctx, "r", r.ID())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mediatest.Tool(t, "ffprobe"), "-v", "error", "-show_entries", "stream=codec_name",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil || strings.Fields(string(out))[0] != "h264" || strings.Fields(string(out))[1] != "aac" {
		t.Fatalf("streams %q %v, want h264 and aac", out, err)
	}
	// Bob's camera starts 1 s in and lasts 3 s: 4 s in all.
	if d := mediatest.ProbeFile(t, path).Duration; d < 3800*time.Millisecond || d > 4500*time.Millisecond {
		t.Fatalf("composed duration %v, want about 4 s", d)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
	if v := mediatest.MaxVolume(t, path, 0.5, 2.5); v < -20 {
		t.Fatalf("the composition is silent (%.1f dB)", v)
	}
	got, err := s.Get("r", r.ID())
	if err != nil || got.Composed != ComposedName {
		t.Fatalf("manifest after composing: %+v %v", got, err)
	}
	if _, err := s.Path("r", r.ID(), ComposedName); err != nil {
		t.Fatal(err)
	}
}

// TestComposeAfterStop: with Compose on, a stopped recording gets its
// composed MP4 by itself; Close cancels a composition still waiting.
func TestComposeAfterStop(t *testing.T) {
	m := makeMedia(t, 2)
	cfg := testConfig()
	cfg.Compose = true
	s := openStore(t, cfg, t.TempDir())
	r, err := s.Start("r", "ada", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, a := addTracks(t, r)
	feed(t, v, m.video)
	feed(t, a, m.audio)
	if _, err := s.Stop("r"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Minute, "the composed recording", func() bool {
		got, err := s.Get("r", r.ID())
		return err == nil && got.Composed == ComposedName
	})
	path, err := s.Path("r", r.ID(), ComposedName)
	if err != nil {
		t.Fatal(err)
	}
	if e := mediatest.DecodeErrors(t, path); e != "" {
		t.Fatalf("ffmpeg reports errors: %s", e)
	}
}
