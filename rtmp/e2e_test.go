package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/parleyhq/parley/internal/testkit"
)

const ffmpegBin = "/usr/bin/ffmpeg"

func requireFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ffmpegBin); err != nil {
		t.Fatalf("ffmpeg is required for RTMP end-to-end tests (%v): apt-get install -y ffmpeg", err)
	}
}

type testServer struct {
	srv  *Server
	addr string
	sink *fakeSink
	reg  *prometheus.Registry
}

// startServer serves on a loopback port until the test ends; cleanup
// waits for Serve to return, so no goroutine or ffmpeg outlives the test.
//
// Loopback TCP rather than vnet + synctest: the publishers here are real
// ffmpeg processes (and go-rtmp's client) talking over kernel sockets, and
// goroutines blocked in real syscalls or on a subprocess pipe are not
// durably blocked, so synctest's fake clock cannot drive them.
func startServer(t testing.TB, keys fakeKeys, mod func(*Config, *Deps)) *testServer {
	t.Helper()
	return startServerOn(t, keys, mod, nil)
}

// startServerOn is startServer with the listener wrapped by wrap (nil:
// unwrapped), for tests that watch the raw connection.
func startServerOn(t testing.TB, keys fakeKeys, mod func(*Config, *Deps), wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled = true
	cfg.Listen = "127.0.0.1:0"
	sink := newFakeSink()
	reg := prometheus.NewRegistry()
	deps := Deps{Keys: keys, Sink: sink, Registerer: reg, Logger: testLogger(t)}
	if mod != nil {
		mod(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if wrap != nil {
		l = wrap(l)
	}
	testkit.RunInBackground(t, "Serve", func(ctx context.Context) error { return srv.Serve(ctx, l) })
	return &testServer{srv: srv, addr: addr, sink: sink, reg: reg}
}

type publishOpts struct {
	key        string
	seconds    float64
	videoArgs  []string // encoder args after -c:v libx264
	sampleRate int
	channels   int
}

func (p publishOpts) args(addr string) []string {
	if p.seconds == 0 {
		p.seconds = 3
	}
	if p.videoArgs == nil {
		p.videoArgs = []string{"-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "30"}
	}
	if p.sampleRate == 0 {
		p.sampleRate = 48000
	}
	if p.channels == 0 {
		p.channels = 2
	}
	a := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=" + strconv.Itoa(p.sampleRate),
		"-t", strconv.FormatFloat(p.seconds, 'f', -1, 64),
		"-c:v", "libx264", "-preset", "veryfast"}
	a = append(a, p.videoArgs...)
	a = append(a, "-c:a", "aac", "-ac", strconv.Itoa(p.channels), "-f", "flv", "rtmp://"+addr+"/live/"+p.key)
	return a
}

// startFFmpeg runs a publishing ffmpeg for at most a minute; its Wait
// returns ffmpeg's output and exit error.
func startFFmpeg(t testing.TB, args []string) *testkit.Process {
	t.Helper()
	requireFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return testkit.StartProcess(t, ctx, ffmpegBin, args...)
}

func runPublish(t *testing.T, ts *testServer, o publishOpts) (*fakeSession, string) {
	t.Helper()
	p := startFFmpeg(t, o.args(ts.addr))
	stderr, err := p.Wait()
	if err != nil {
		t.Fatalf("ffmpeg publish failed: %v\n%s", err, stderr)
	}
	s := waitSession(t, ts.sink)
	select {
	case <-s.closedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("session not closed after the publisher left")
	}
	return s, stderr
}

func waitSession(t *testing.T, sink *fakeSink) *fakeSession {
	t.Helper()
	select {
	case s := <-sink.started:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no session started")
		return nil
	}
}

// checkVideo asserts what a browser needs: a keyframe with SPS/PPS first,
// one marker per access unit, one RTP timestamp per access unit at the
// 30 fps cadence, contiguous sequence numbers, MTU-sized packets, and an
// elementary stream that ffprobe decodes without error.
func checkVideo(t *testing.T, v *fakeTrack, wantPLID string) {
	t.Helper()
	if v == nil {
		t.Fatal("no video track")
	}
	if !strings.Contains(v.spec.SDPFmtpLine, "packetization-mode=1") || !strings.Contains(v.spec.SDPFmtpLine, "profile-level-id="+wantPLID) {
		t.Errorf("fmtp %q, want profile-level-id=%s", v.spec.SDPFmtpLine, wantPLID)
	}
	if v.spec.MimeType != "video/H264" || v.spec.ClockRate != 90000 || v.spec.Width != 640 || v.spec.Height != 360 {
		t.Errorf("spec %+v", v.spec)
	}
	pkts := v.packets()
	var aus [][]*rtp.Packet
	var cur []*rtp.Packet
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("sequence gap at %d: %d after %d", i, p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		if len(p.Payload) > 1200 {
			t.Fatalf("packet %d payload %d > MTU", i, len(p.Payload))
		}
		if len(cur) > 0 && p.Timestamp != cur[0].Timestamp {
			t.Fatalf("packet %d changes timestamp inside an access unit (missing marker)", i)
		}
		cur = append(cur, p)
		if p.Marker {
			aus = append(aus, cur)
			cur = nil
		}
	}
	if len(aus) < 60 {
		t.Fatalf("only %d access units in ~3 s at 30 fps", len(aus))
	}
	for i := 1; i < len(aus); i++ {
		d := aus[i][0].Timestamp - aus[i-1][0].Timestamp
		if d < 2900 || d > 3100 {
			t.Fatalf("AU %d: timestamp step %d, want ~3000 (90 kHz, 30 fps)", i, d)
		}
	}
	// First AU: SPS, PPS, then IDR.
	first := depacketize(t, aus[0])
	var types []byte
	for _, n := range first {
		types = append(types, n[0]&0x1f)
	}
	if len(types) < 3 || types[0] != naluSPS || types[1] != naluPPS || !bytes.Contains(types, []byte{naluIDR}) {
		t.Fatalf("first access unit NAL types %v, want SPS, PPS, IDR...", types)
	}
	// Every keyframe carries SPS/PPS in front.
	keyframes := 0
	var annexB []byte
	for _, au := range aus {
		nalus := depacketize(t, au)
		hasIDR := false
		for _, n := range nalus {
			if n[0]&0x1f == naluIDR {
				hasIDR = true
			}
			annexB = append(annexB, 0, 0, 0, 1)
			annexB = append(annexB, n...)
		}
		if hasIDR {
			keyframes++
			if nalus[0][0]&0x1f != naluSPS {
				t.Errorf("keyframe without SPS in front")
			}
		}
	}
	if keyframes < 2 {
		t.Errorf("%d keyframes with -g 30 over ~3 s", keyframes)
	}
	f := filepath.Join(t.TempDir(), "out.h264")
	if err := os.WriteFile(f, annexB, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-f", "h264", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n < len(aus)-1 {
		t.Fatalf("ffprobe decoded %q frames of %d access units (decode errors?)", out, len(aus))
	}
}

func checkAudio(t *testing.T, a *fakeTrack) {
	t.Helper()
	if a == nil {
		t.Fatal("no audio track")
	}
	if a.spec.MimeType != "audio/opus" || a.spec.ClockRate != 48000 || a.spec.Channels != 2 {
		t.Errorf("audio spec %+v", a.spec)
	}
	pkts := a.packets()
	if len(pkts) < 75 {
		t.Fatalf("only %d Opus packets in ~3 s (want >= 75 of 20 ms)", len(pkts))
	}
	for i, p := range pkts {
		if p.PayloadType != opusPayloadType {
			t.Fatalf("packet %d PT %d", i, p.PayloadType)
		}
		n, err := opusSamples(p.Payload)
		if err != nil || n != 960 {
			t.Fatalf("packet %d: %d samples, %v (want 20 ms Opus)", i, n, err)
		}
		if i > 0 {
			if p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
				t.Fatalf("audio sequence gap at %d", i)
			}
			if d := p.Timestamp - pkts[i-1].Timestamp; d != 960 {
				t.Fatalf("audio packet %d timestamp step %d, want 960", i, d)
			}
		}
	}
}

func TestE2EPublishBaseline48kStereo(t *testing.T) {
	ts := startServer(t, fakeKeys{"k1": nil}, nil)
	s, _ := runPublish(t, ts, publishOpts{key: "k1"})
	if s.info.Binding.Room != "room-k1" || s.info.Binding.Identity != "ingress-k1" {
		t.Errorf("binding %+v", s.info.Binding)
	}
	if s.info.Key != "k1" { // a relaying Sink authenticates with it
		t.Errorf("StreamInfo.Key %q, want the publish's key", s.info.Key)
	}
	v, a := s.tracks()
	checkVideo(t, v, "42e01e") // x264 writes 42c01e; browsers need 42e0
	checkAudio(t, a)
	if len(s.unavailable) != 0 {
		t.Errorf("audio reported unavailable: %v", s.unavailable)
	}
	waitMetric(t, ts.srv.m.active, 0)
	if got := metricValue(t, ts.srv.m.bytesIn.WithLabelValues("video")); got < 10000 {
		t.Errorf("video bytes metric %v", got)
	}
}

func TestE2EPublishMain44kMono(t *testing.T) {
	ts := startServer(t, fakeKeys{"k2": nil}, nil)
	s, _ := runPublish(t, ts, publishOpts{key: "k2", sampleRate: 44100, channels: 1,
		videoArgs: []string{"-profile:v", "main", "-tune", "zerolatency", "-bf", "0", "-g", "30"}})
	v, a := s.tracks()
	checkVideo(t, v, "4d001e")
	checkAudio(t, a)
}

func TestE2EPublishHigh(t *testing.T) {
	ts := startServer(t, fakeKeys{"k3": nil}, nil)
	s, _ := runPublish(t, ts, publishOpts{key: "k3",
		videoArgs: []string{"-profile:v", "high", "-tune", "zerolatency", "-bf", "0", "-g", "30"}})
	v, a := s.tracks()
	checkVideo(t, v, "64001e")
	checkAudio(t, a)
}

func TestE2ERefusedKeys(t *testing.T) {
	ts := startServer(t, fakeKeys{"old": ErrRevoked}, nil)
	cases := []struct{ key, want, reason string }{
		{"nope", "unknown stream key", reasonUnknownKey},
		{"old", "stream key revoked", reasonRevokedKey},
	}
	for _, c := range cases {
		p := startFFmpeg(t, publishOpts{key: c.key, seconds: 2}.args(ts.addr))
		stderr, err := p.Wait()
		if err == nil {
			t.Fatalf("key %q: ffmpeg exited 0; want a refusal", c.key)
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("key %q: ffmpeg stderr lacks %q:\n%s", c.key, c.want, stderr)
		}
		if got := metricValue(t, ts.srv.m.refused.WithLabelValues(c.reason)); got != 1 {
			t.Errorf("refused{reason=%s} = %v", c.reason, got)
		}
	}
	if n := len(ts.sink.all()); n != 0 {
		t.Errorf("%d sessions started for refused keys", n)
	}
}

func TestE2ESecondPublishOnLiveKeyRefused(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, nil)
	first := startFFmpeg(t, publishOpts{key: "k", seconds: 6}.args(ts.addr))
	s := waitSession(t, ts.sink)
	v := waitVideo(t, s)
	second := startFFmpeg(t, publishOpts{key: "k", seconds: 2}.args(ts.addr))
	stderr, err := second.Wait()
	if err == nil || !strings.Contains(stderr, "stream key already live") {
		t.Fatalf("second publish: err %v, stderr:\n%s", err, stderr)
	}
	// The first publish is untouched and keeps flowing.
	before := len(v.packets())
	time.Sleep(500 * time.Millisecond)
	if after := len(v.packets()); after <= before {
		t.Fatalf("first publish stopped flowing (%d -> %d packets)", before, after)
	}
	if stderr, err := first.Wait(); err != nil {
		t.Fatalf("first publish: %v\n%s", err, stderr)
	}
	<-s.closedCh
	// The key is free again once the first publisher left.
	waitKeyFree(t, ts.srv, "k")
	again := startFFmpeg(t, publishOpts{key: "k", seconds: 1}.args(ts.addr))
	if stderr, err := again.Wait(); err != nil {
		t.Fatalf("republish after the first ended: %v\n%s", err, stderr)
	}
}

func waitVideo(t *testing.T, s *fakeSession) *fakeTrack {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := s.tracks(); v != nil {
			select {
			case <-v.first:
				return v
			case <-time.After(100 * time.Millisecond):
			}
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Fatal("no video packets")
	return nil
}

func TestE2EBFramesRefused(t *testing.T) {
	ts := startServer(t, fakeKeys{"b": nil}, nil)
	p := startFFmpeg(t, publishOpts{key: "b", seconds: 3,
		videoArgs: []string{"-profile:v", "main", "-bf", "2", "-g", "30"}}.args(ts.addr))
	stderr, err := p.Wait()
	if err == nil {
		t.Fatalf("B-frame stream: ffmpeg exited 0\n%s", stderr)
	}
	if !strings.Contains(stderr, "B-frames") || !strings.Contains(stderr, "OBS") {
		t.Errorf("ffmpeg stderr lacks the B-frame advice:\n%s", stderr)
	}
	s := waitSession(t, ts.sink)
	select {
	case <-s.closedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("session not closed after B-frame refusal")
	}
	if got := metricValue(t, ts.srv.m.refused.WithLabelValues(reasonBFrames)); got != 1 {
		t.Errorf("refused{reason=bframes} = %v", got)
	}
}

func TestE2EMissingFFmpegKeepsVideo(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, func(c *Config, _ *Deps) {
		c.FFmpegPath = "/nonexistent/ffmpeg"
	})
	s, _ := runPublish(t, ts, publishOpts{key: "k"})
	v, a := s.tracks()
	checkVideo(t, v, "42e01e")
	if a != nil && len(a.packets()) != 0 {
		t.Errorf("audio packets without a transcoder")
	}
	if len(s.unavailable) == 0 || !strings.Contains(fmt.Sprint(s.unavailable[0]), "apt-get install -y ffmpeg") {
		t.Errorf("session not told audio is unavailable (with the fix): %v", s.unavailable)
	}
}

// metricValue reads a gauge or counter.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Counter != nil:
		return d.Counter.GetValue()
	}
	t.Fatalf("metric is neither gauge nor counter")
	return 0
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLogger logs into the test's output (shown with -v or on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// pidTranscoder records the ffmpeg processes it starts.
type pidTranscoder struct {
	Transcoder
	mu   sync.Mutex
	pids []int
}

func (p *pidTranscoder) Start(ctx context.Context, cfg AudioConfig) (TranscodeStream, error) {
	st, err := p.Transcoder.Start(ctx, cfg)
	if err == nil {
		p.mu.Lock()
		p.pids = append(p.pids, st.(*ffmpegStream).cmd.Process.Pid)
		p.mu.Unlock()
	}
	return st, err
}

func TestShutdownEndsPublishesAndTranscoders(t *testing.T) {
	requireFFmpeg(t)
	pt := &pidTranscoder{Transcoder: NewFFmpegTranscoder(FFmpegOptions{Path: ffmpegBin})}
	cfg := DefaultConfig()
	sink := newFakeSink()
	srv, err := New(cfg, Deps{Keys: fakeKeys{"k": nil}, Sink: sink, Transcoder: pt, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	pub := startFFmpeg(t, publishOpts{key: "k", seconds: 20}.args(l.Addr().String()))
	s := waitSession(t, sink)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, a := s.tracks(); a != nil && len(a.packets()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no audio before shutdown")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	waitClosed(t, s, time.Second)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if len(pt.pids) == 0 {
		t.Fatal("no transcoder was started")
	}
	for _, pid := range pt.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("transcoder ffmpeg %d outlived the server: %v", pid, err)
		}
	}
	if _, err := pub.Wait(); err == nil {
		t.Error("publisher's ffmpeg exited 0 although the server shut down mid-stream")
	}
}
