package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// createStreamKey makes a stream key through the admin API, as an
// operator's tooling would.
func createStreamKey(t *testing.T, srv *server, room, name string) string {
	t.Helper()
	_, key := testkit.CreateStreamKey(t, srv.URL, room, name)
	return key
}

type streamState struct {
	Sid    string `json:"sid"`
	Name   string `json:"name"`
	Stream bool   `json:"stream"`
	Notice string `json:"notice"`
}

// TestOBSStreamInBrowser: ffmpeg publishes over RTMP as OBS would, and a
// viewer in the room, through the web client, sees the stream marked as a
// stream, its video decoding at the published size and its audio arriving.
// Baseline, main and high profiles, 48 kHz stereo and 44.1 kHz mono.
func TestOBSStreamInBrowser(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg not found: install it with `apt-get install -y ffmpeg` (or run ./scripts/test)")
	}
	rtmpPort := testkit.FreeTCPPort(t)
	srv := startServerWith(t, map[string]any{"rtmp": map[string]any{"enabled": true, "listen": fmt.Sprintf("127.0.0.1:%d", rtmpPort)}})
	ctx := testContext(t, 4*time.Minute)
	key := createStreamKey(t, srv, "stage", "Stage")
	viewer := join(t, ctx, srv, "stage", "Viewer")
	rtmpURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", rtmpPort, key)

	cases := []struct {
		profile, size string
		w, h          int
		rate, ch      string
	}{
		{"baseline", "640x360", 640, 360, "48000", "2"},
		{"main", "480x270", 480, 270, "44100", "1"},
		{"high", "320x180", 320, 180, "48000", "2"},
	}
	for _, tc := range cases {
		t.Run(tc.profile, func(t *testing.T) {
			viewer.t = t
			pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			pub := exec.CommandContext(pctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
				"-f", "lavfi", "-i", "testsrc2=size="+tc.size+":rate=30",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+tc.rate,
				"-t", "40", "-c:v", "libx264", "-profile:v", tc.profile, "-tune", "zerolatency", "-bf", "0", "-g", "30",
				"-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", tc.rate, "-ac", tc.ch, "-f", "flv", rtmpURL)
			var ffout bytes.Buffer
			pub.Stdout, pub.Stderr = &ffout, &ffout
			if err := pub.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cancel()
				_ = pub.Wait()
				if t.Failed() {
					t.Logf("ffmpeg: %s", ffout.String())
				}
			}()
			stats := viewer.waitStats(pctx, 30*time.Second, fmt.Sprintf("the stream's %s video decoding", tc.size), func(s []trackStat) bool {
				for _, v := range videosFrom(s, "") {
					if v.FrameWidth == tc.w && v.FrameHeight == tc.h {
						return true
					}
				}
				return false
			})
			var sid string
			var tracks []trackStat
			for _, v := range videosFrom(stats, "") {
				if v.FrameWidth == tc.w && v.FrameHeight == tc.h {
					sid = v.Participant
					tracks = append(tracks, v)
				}
			}
			stats = viewer.waitStats(pctx, 15*time.Second, "the stream's audio arriving", func(s []trackStat) bool {
				for _, a := range s {
					if a.Participant == sid && a.Kind == "audio" && a.PacketsReceived > 0 {
						return true
					}
				}
				return false
			})
			for _, a := range stats {
				if a.Participant == sid && a.Kind == "audio" {
					tracks = append(tracks, a)
				}
			}
			viewer.assertFlowing(pctx, tracks)
			parts, err := Eval[[]streamState](pctx, viewer.B, `window.parley.state().participants`)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range parts {
				if p.Sid == sid {
					found = true
					if !p.Stream || p.Name != "Stage" {
						t.Errorf("stream participant shown as %+v, want a stream named Stage", p)
					}
				}
			}
			if !found {
				t.Errorf("no participant %s in the viewer's state: %+v", sid, parts)
			}
			viewer.shot(pctx, "obs-"+tc.profile)
		})
	}
	viewer.t = t

	// A wrong key is refused: ffmpeg fails instead of streaming.
	bad := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
		"-t", "2", "-c:v", "libx264", "-f", "flv", fmt.Sprintf("rtmp://127.0.0.1:%d/live/wrong-key", rtmpPort))
	if err := bad.Run(); err == nil {
		t.Fatal("ffmpeg published with a wrong stream key")
	}
}
