package ingest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
)

const ffmpegBin = "/usr/bin/ffmpeg"

func requireFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ffmpegBin); err != nil {
		t.Fatalf("ffmpeg is required for the RTMP end-to-end test (%v): apt-get install -y ffmpeg", err)
	}
}

// startRTMP serves the real RTMP server on a loopback port, wired to svc
// and keys, until the test ends.
func startRTMP(t *testing.T, keys rtmp.KeyStore, sink rtmp.Sink) string {
	t.Helper()
	cfg := rtmp.DefaultConfig()
	cfg.Enabled = true
	cfg.Listen = "127.0.0.1:0"
	cfg.FFmpegPath = ffmpegBin
	srv, err := rtmp.New(cfg, rtmp.Deps{Keys: keys, Sink: sink, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunInBackground(t, "rtmp Serve", func(ctx context.Context) error { return srv.Serve(ctx, l) })
	return l.Addr().String()
}

// startFFmpegPublish runs ffmpeg publishing a test pattern and a sine
// tone for at most a minute; its Wait returns ffmpeg's output and exit
// error.
func startFFmpegPublish(t *testing.T, url, seconds string) *testkit.Process {
	return startFFmpegProfile(t, url, seconds, "baseline")
}

func startFFmpegProfile(t *testing.T, url, seconds, profile string) *testkit.Process {
	t.Helper()
	requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return testkit.StartProcess(t, ctx, ffmpegBin, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", seconds,
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-tune", "zerolatency", "-bf", "0", "-g", "30",
		"-c:a", "aac", "-ac", "2", "-f", "flv", url)
}

// TestRTMPEndToEnd: ffmpeg publishes H.264 + AAC to the real RTMP server
// wired to the Service and a SQLite KeyStore; a WebRTC viewer in the room
// receives H.264 with SPS/PPS before the key frame, and Opus.
func TestRTMPEndToEnd(t *testing.T) {
	requireFFmpeg(t)
	ctx := context.Background()
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	key, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "OBS"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Old"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	s := startSFU(t)
	dir := &fakeDir{}
	cfg := DefaultConfig()
	cfg.ReconnectGrace = 3 * time.Second // covers ffmpeg's restart below
	svc, _ := startService(t, cfg, Deps{Media: s, Keys: ks, Directory: dir})
	addr := startRTMP(t, ks, svc)
	v := newViewer(t, s, "stage", "PA_viewer")

	// Wrong and revoked keys: ffmpeg fails, nothing joins the room.
	for _, k := range []string{"sk_wrong", revoked.Secret} {
		stderr, err := startFFmpegPublish(t, "rtmp://"+addr+"/live/"+k, "2").Wait()
		if err == nil {
			t.Fatalf("ffmpeg with a bad key succeeded:\n%s", stderr)
		}
		if len(svc.Streams()) != 0 || dir.count("add ") != 0 {
			t.Fatalf("a refused key joined the room: %v", dir.all())
		}
	}

	p := startFFmpegPublish(t, "rtmp://"+addr+"/live/"+key.Secret, "8")
	testkit.Eventually(t, 20*time.Second, "viewer receives H.264 and Opus from ffmpeg", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 150 && v.ReceivedKind(webrtc.RTPCodecTypeAudio) >= 100
	})
	streams := svc.Streams()
	if len(streams) != 1 || streams[0].Identity != "ingress-obs" || streams[0].Protocol != "rtmp" {
		t.Fatalf("streams %+v", streams)
	}
	pid := streams[0].ParticipantID
	vt, _ := v.TrackOfKind(webrtc.RTPCodecTypeVideo)
	at, _ := v.TrackOfKind(webrtc.RTPCodecTypeAudio)
	if !strings.HasPrefix(vt.StreamID, pid+"|") || !strings.HasPrefix(at.StreamID, pid+"|") {
		t.Fatalf("stream ids %q %q, want %s|...", vt.StreamID, at.StreamID, pid)
	}
	if !strings.EqualFold(vt.Codec.MimeType, "video/H264") || !strings.Contains(vt.Codec.SDPFmtpLine, "packetization-mode=1") {
		t.Fatalf("video codec %+v", vt.Codec)
	}
	if !strings.EqualFold(at.Codec.MimeType, "audio/opus") || at.Codec.ClockRate != 48000 {
		t.Fatalf("audio codec %+v", at.Codec)
	}
	checkParamSetsBeforeIDR(t, vt.Packets)
	// Opus from the transcoder: 20 ms frames (960 samples apart).
	steps := 0
	for i := 1; i < len(at.Packets); i++ {
		if at.Packets[i].Timestamp-at.Packets[i-1].Timestamp == 960 {
			steps++
		}
	}
	if steps < len(at.Packets)/2 {
		t.Fatalf("only %d of %d Opus packets are 20 ms apart", steps, len(at.Packets))
	}
	for _, want := range []string{"add stage " + pid + " ingress-obs OBS", "track stage " + pid + " video video/H264 camera",
		"track stage " + pid + " audio audio/opus microphone"} {
		if dir.count(want) != 1 {
			t.Fatalf("directory calls %v lack %q", dir.all(), want)
		}
	}

	// A second publish on the same key while live is refused.
	stderr, err2 := startFFmpegPublish(t, "rtmp://"+addr+"/live/"+key.Secret, "2").Wait()
	if err2 == nil {
		t.Fatalf("second publish on a live key succeeded:\n%s", stderr)
	}

	if stderr, err := p.Wait(); err != nil {
		t.Fatalf("ffmpeg publish failed: %v\n%s", err, stderr)
	}
	firstVideo := vt.ID

	// The publisher comes back within the grace period (here in High
	// profile, still without B-frames): same participant, new tracks.
	p = startFFmpegProfile(t, "rtmp://"+addr+"/live/"+key.Secret, "3", "high")
	testkit.Eventually(t, 20*time.Second, "viewer receives the reconnected stream", func() bool {
		for id, rt := range v.RemoteTracks() {
			if id != firstVideo && rt.Kind == webrtc.RTPCodecTypeVideo && rt.Count >= 30 {
				return true
			}
		}
		return false
	})
	if st := svc.Streams(); len(st) != 1 || st[0].ParticipantID != pid {
		t.Fatalf("after reconnect: %+v, want participant %s", st, pid)
	}
	if dir.count("add ") != 1 || dir.count("remove ") != 0 || dir.count("track stage "+pid+" video") != 2 {
		t.Fatalf("reconnect seen as leave/join: %v", dir.all())
	}
	if stderr, err := p.Wait(); err != nil {
		t.Fatalf("ffmpeg publish failed: %v\n%s", err, stderr)
	}
	testkit.Eventually(t, 15*time.Second, "stream leaves after ffmpeg ends", func() bool {
		return dir.count("remove stage "+pid) == 1 && len(svc.Streams()) == 0
	})
	v.WaitTracksEnded(t, 4)
}
