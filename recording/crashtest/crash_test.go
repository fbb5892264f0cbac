package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/recording/mediatest"
	"github.com/parleyhq/parley/signaling/auth"
)

// The issue's figures: killed 20 s into the recording, the files must
// decode to at least 15 s.
const (
	killAfter   = 20 * time.Second
	mustDecode  = 15 * time.Second
	crashedRoom = "crash"
)

// TestRecordingSurvivesSIGKILL: a participant (pion; a VP8 camera, an
// H.264 screen share and an Opus microphone, made by ffmpeg) is recorded
// through the admin API; 20 s in,
// parley is killed with SIGKILL, as the OOM killer or a crash would.
// Restarted on the same data directory, it lists the recording as
// incomplete, and each track's file decodes without an error to at least
// 15 s: what the writers had handed to the kernel survives the process.
func TestRecordingSurvivesSIGKILL(t *testing.T) {
	p := testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: map[string]any{
		// No composition: an incomplete recording is not composed by
		// itself, and the test checks the per-track files.
		"recording": map[string]any{"enabled": true, "compose": false},
	}})
	// Media made before the clock starts: 10 s of each, looped.
	frames, _, _ := mediatest.VP8(t, 10)
	screen := mediatest.H264(t, 10, "-profile:v", "baseline")
	packets := mediatest.Opus(t, 10)

	pub := publish(t, p, frames, screen, packets)

	var started recording.Manifest
	if code, body := admin(t, p, http.MethodPost, "/api/admin/rooms/"+crashedRoom+"/recording/start"); code != http.StatusOK ||
		json.Unmarshal(body, &started) != nil {
		t.Fatalf("start recording: %d %s", code, body)
	}
	startedAt := time.Now()
	// Both tracks reach the recording (the running manifest is synced
	// every 2 s) well before the kill, else the test would prove nothing.
	var running recording.Manifest
	if !testkit.Poll(context.Background(), 10*time.Second, 200*time.Millisecond, func() bool {
		running = get(t, p, started.ID)
		if len(running.Tracks) != 3 {
			return false
		}
		for _, tr := range running.Tracks {
			if tr.Frames == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("10 s into the recording its manifest shows %+v, want three tracks with frames", running)
	}
	time.Sleep(time.Until(startedAt.Add(killAfter)))
	p.Kill(t)
	pub.stop()

	p.Restart(t)
	code, body := admin(t, p, http.MethodGet, "/api/admin/rooms/"+crashedRoom+"/recordings")
	var list struct {
		Recordings []recording.Manifest `json:"recordings"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Recordings) != 1 {
		t.Fatalf("list after the restart: %d %s", code, body)
	}
	m := list.Recordings[0]
	if m.ID != started.ID || m.State != recording.StateIncomplete || m.Ended == nil || m.StopReason == "" {
		t.Fatalf("after the kill the recording is listed as %+v, want %s incomplete with an end and a reason", m, started.ID)
	}
	t.Logf("recording %s: %s (%s), ended %v after its start", m.ID, m.State, m.StopReason, m.Ended.Sub(m.Started))

	dir := filepath.Join(p.DataDir, "recordings", crashedRoom, m.ID)
	files := map[string]int{}
	for _, tr := range m.Tracks {
		path := filepath.Join(dir, tr.File)
		files[tr.Codec+" "+filepath.Ext(tr.File)]++
		if errs := mediatest.DecodeErrors(t, path); errs != "" {
			t.Errorf("%s: ffmpeg decode errors:\n%s", tr.File, errs)
		}
		switch tr.Kind {
		case "video":
			first, last, n := mediatest.VideoSpan(t, path)
			t.Logf("%s: %d frames decoded, %v to %v", tr.File, n, first, last)
			// The file is on the recording's timeline, and the camera was
			// on before the recording started: it plays from its first
			// key frame (one a second) to at least mustDecode.
			if first > 3*time.Second || last < mustDecode {
				t.Errorf("%s: video decodes from %v to %v, want from the start to at least %v of the %v recorded", tr.File, first, last, mustDecode, killAfter)
			}
		case "audio":
			d := mediatest.AudioDuration(t, path)
			t.Logf("%s: %v of audio decoded", tr.File, d)
			if d < mustDecode {
				t.Errorf("%s: %v of audio decoded, want at least %v of the %v recorded", tr.File, d, mustDecode, killAfter)
			}
		}
	}
	if len(files) != 3 || files["video/VP8 .webm"] != 1 || files["video/H264 .mkv"] != 1 || files["audio/opus .ogg"] != 1 {
		t.Errorf("tracks in the manifest: %v, want VP8 in WebM, H.264 in Matroska and Opus in Ogg", files)
	}

	// The restarted server records again: the interrupted recording
	// does not hold the room.
	if code, body := admin(t, p, http.MethodPost, "/api/admin/rooms/"+crashedRoom+"/recording/start"); code != http.StatusOK {
		t.Fatalf("a new recording after the restart: %d %s", code, body)
	}
	if code, body := admin(t, p, http.MethodPost, "/api/admin/rooms/"+crashedRoom+"/recording/stop"); code != http.StatusOK {
		t.Fatalf("stop the new recording: %d %s", code, body)
	}
}

// publisher is one participant sending a looped camera and microphone in
// real time until stop.
type publisher struct {
	c      *client.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func (pb *publisher) stop() {
	pb.once.Do(func() {
		pb.cancel()
		pb.wg.Wait()
		_ = pb.c.Close()
	})
}

// publish joins crashedRoom and sends frames (VP8, 25 fps), screen
// (H.264 access units, 25 fps) and packets (Opus, 20 ms) over and over.
func publish(t *testing.T, p *testkit.Parley, frames, screen, packets [][]byte) *publisher {
	t.Helper()
	keys, err := auth.NewKeySet(map[string]string{testkit.ParleyAPIKey: testkit.ParleyAPISecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Issue(testkit.ParleyAPIKey, auth.Claims{Identity: "cam", Name: "Cam", Room: crashedRoom,
		Grants: auth.Grants{Publish: true, Subscribe: true}}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: "ws" + strings.TrimPrefix(p.URL, "http") + "/ws", Origin: p.URL, Token: tok})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", "cam")
	if err != nil {
		t.Fatal(err)
	}
	share, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "screen", "cam")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "microphone", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, []webrtc.TrackLocal{video, share, audio}, []string{"camera", "screen", "microphone"}); err != nil {
		_ = c.Close()
		t.Fatalf("publish: %v", err)
	}
	sendCtx, stop := context.WithCancel(context.Background())
	pb := &publisher{c: c, cancel: stop}
	t.Cleanup(pb.stop)
	send := func(track *webrtc.TrackLocalStaticSample, samples [][]byte, every time.Duration) {
		defer pb.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-sendCtx.Done():
				return
			case <-tick.C:
			}
			// Errors while parley is down are expected; the loop ends
			// with stop.
			_ = track.WriteSample(media.Sample{Data: samples[i%len(samples)], Duration: every})
		}
	}
	pb.wg.Add(3)
	go send(video, frames, 40*time.Millisecond)
	go send(share, screen, 40*time.Millisecond)
	go send(audio, packets, 20*time.Millisecond)
	return pb
}

// admin calls the admin API with the server's throwaway key.
func admin(t *testing.T, p *testkit.Parley, method, path string) (int, []byte) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader([]byte("{}"))
	}
	req, err := http.NewRequest(method, p.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testkit.ParleyAPIKey, testkit.ParleyAPISecret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// get is one recording's manifest as the admin API shows it.
func get(t *testing.T, p *testkit.Parley, id string) recording.Manifest {
	t.Helper()
	code, body := admin(t, p, http.MethodGet, fmt.Sprintf("/api/admin/rooms/%s/recordings/%s", crashedRoom, id))
	var m recording.Manifest
	if code != http.StatusOK || json.Unmarshal(body, &m) != nil {
		t.Fatalf("get recording %s: %d %s", id, code, body)
	}
	return m
}
