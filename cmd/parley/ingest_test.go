package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// TestOBSStreamReachesRoom is the ingest path a streamer uses: a key from
// `parley ingress create`, ffmpeg publishing to the printed RTMP URL, and
// a participant in the room seeing the stream join as a participant and
// receiving its H.264 video and Opus audio.
func TestOBSStreamReachesRoom(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg not found: install it with `apt-get install -y ffmpeg` (or run ./scripts/test)")
	}
	rtmpPort := testkit.FreeTCPPort(t)
	extra := fmt.Sprintf("rtmp:\n  enabled: true\n  listen: 127.0.0.1:%d\n", rtmpPort)
	base, file := startServerFile(t, extra)

	var out bytes.Buffer
	if err := run(context.Background(), []string{"ingress", "create", "--config", file, "--room", "stage", "--name", "Stage", "--host", "127.0.0.1"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`server:\s+(rtmp://\S+)\n\s+stream key: (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("ingress create printed no RTMP URL and key:\n%s", out.String())
	}
	url := m[1] + "/" + m[2]

	keys, _ := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	tok, _ := keys.Issue(testKeyID, auth.Claims{Identity: "viewer", Room: "stage", Grants: auth.Grants{Subscribe: true}}, time.Minute)
	var video, audio atomic.Int64
	var mu sync.Mutex
	var streamParticipant string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		URL: "ws" + strings.TrimPrefix(base, "http") + "/ws", Origin: base, Token: tok,
		OnEvent: func(typ string, data json.RawMessage) {
			if typ != "participant_joined" {
				return
			}
			var b struct {
				Participant struct {
					Name   string `json:"name"`
					Stream bool   `json:"stream"`
				} `json:"participant"`
			}
			if json.Unmarshal(data, &b) == nil && b.Participant.Stream {
				mu.Lock()
				streamParticipant = b.Participant.Name
				mu.Unlock()
			}
		},
		OnTrack: func(_, _ string, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			counter := &audio
			if tr.Codec().MimeType == webrtc.MimeTypeH264 {
				counter = &video
			}
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
					counter.Add(1)
				}
			}()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	pub := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "8", "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "30",
		"-c:a", "aac", "-f", "flv", url)
	var ffout bytes.Buffer
	pub.Stdout, pub.Stderr = &ffout, &ffout
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Process.Kill(); _ = pub.Wait() }()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && (video.Load() < 100 || audio.Load() < 50) {
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	name := streamParticipant
	mu.Unlock()
	if name != "Stage" {
		t.Errorf("no stream participant named Stage joined the room (got %q)", name)
	}
	if video.Load() < 100 || audio.Load() < 50 {
		t.Fatalf("viewer got %d video and %d audio packets; ffmpeg said:\n%s", video.Load(), audio.Load(), ffout.String())
	}

	// The admin API lists the live stream; only for an admin.
	listStreams := func(withAuth bool) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+ingest.StreamsPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if withAuth {
			req.SetBasicAuth(testKeyID, testSecret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, string(b)
	}
	if code, body := listStreams(true); code != http.StatusOK || !strings.Contains(body, `"room":"stage"`) ||
		!strings.Contains(body, `"name":"Stage"`) || !strings.Contains(body, `"protocol":"rtmp"`) {
		t.Errorf("GET %s while streaming: %d %s", ingest.StreamsPath, code, body)
	}
	if code, _ := listStreams(false); code != http.StatusUnauthorized {
		t.Errorf("GET %s without credentials: %d, want 401", ingest.StreamsPath, code)
	}

	// A wrong key is refused: ffmpeg fails instead of streaming.
	bad := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
		"-t", "2", "-c:v", "libx264", "-f", "flv", m[1]+"/not-a-key")
	if err := bad.Run(); err == nil {
		t.Fatal("ffmpeg published with a wrong stream key")
	}
}

// TestTURNCredentialsEndpoint: other apps get TURN credentials from the
// running server with an API key, and nothing without one.
func TestTURNCredentialsEndpoint(t *testing.T) {
	udp := testkit.FreeUDPPort(t)
	extra := fmt.Sprintf("turn:\n  enabled: true\n  listen_udp: [127.0.0.1:%d]\n  listen_tcp: []\n  listen_tls: []\n  public_ipv4: 127.0.0.1\n  shared_secrets: [%s]\n", udp, turnTestSecret)
	base, _ := startServerFile(t, extra)
	req, _ := http.NewRequest("GET", base+"/api/turn/credentials?user=app1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without an API key: HTTP %d, want 401", resp.StatusCode)
	}
	req.SetBasicAuth(testKeyID, testSecret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ice iceServerJSON
	if err := json.NewDecoder(resp.Body).Decode(&ice); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP %d, decode %v", resp.StatusCode, err)
	}
	if !strings.HasSuffix(ice.Username, ":app1") || ice.Credential == "" || len(ice.URLs) == 0 {
		t.Fatalf("credentials %+v", ice)
	}
}
