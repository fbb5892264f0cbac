package rtmp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gortmp "github.com/livekit/go-rtmp"
	"github.com/livekit/go-rtmp/handshake"
	"github.com/livekit/go-rtmp/message"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
)

// dialPublish publishes with go-rtmp's client (cheaper than ffmpeg for
// protocol-level tests). The connection is closed at test cleanup.
func dialPublish(t *testing.T, addr, app, key string) (*gortmp.ClientConn, *gortmp.Stream, error) {
	t.Helper()
	cc, err := gortmp.Dial("rtmp", addr, &gortmp.ConnConfig{})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { _ = cc.Close() })
	if err := cc.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: app}}); err != nil {
		return cc, nil, err
	}
	st, err := cc.CreateStream(nil, 128)
	if err != nil {
		return cc, nil, err
	}
	if err := st.Publish(&message.NetStreamPublish{PublishingName: key, PublishingType: "live"}); err != nil {
		return cc, st, err
	}
	return cc, st, nil
}

func waitClosed(t *testing.T, s *fakeSession, within time.Duration) {
	t.Helper()
	select {
	case <-s.closedCh:
	case <-time.After(within):
		t.Fatalf("session not closed within %s", within)
	}
}

func TestStalledPublisherTimesOut(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, func(c *Config, _ *Deps) { c.ReadTimeout = 300 * time.Millisecond })
	if _, _, err := dialPublish(t, ts.addr, "live", "k"); err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.sink)
	waitClosed(t, s, 5*time.Second) // the client sends nothing after publish
	// The key is free again.
	waitKeyFree(t, ts.srv, "k")
	if _, _, err := dialPublish(t, ts.addr, "live", "k"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, waitSession(t, ts.sink), 5*time.Second)
}

func TestHandshakeStallTimesOut(t *testing.T) {
	ts := startServer(t, fakeKeys{}, func(c *Config, _ *Deps) { c.HandshakeTimeout = 300 * time.Millisecond })
	cases := map[string][]byte{
		"silent":         nil,
		"half C1":        append([]byte{3}, make([]byte, 700)...),
		"handshake only": nil, // filled below: completes the handshake, then idles
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if name == "handshake only" {
				if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := c.Write(send); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server kept a stalled connection open for 5 s")
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("closed after %s", el)
			}
		})
	}
}

func TestWrongAppRefused(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, nil)
	_, _, err := dialPublish(t, ts.addr, "other", "k")
	if err == nil {
		t.Fatal("connect to app \"other\" succeeded")
	}
	if got := metricValue(t, ts.srv.m.refused.WithLabelValues(reasonApp)); got != 1 {
		t.Errorf("refused{wrong_app} = %v", got)
	}
	if n := len(ts.sink.all()); n != 0 {
		t.Errorf("%d sessions", n)
	}
}

// TestBadInputClosesOnlyThatConnection sends input that makes go-rtmp
// panic or fail to decode, and checks a live publish on another
// connection is untouched and new publishes still work.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, fakeKeys{"live": nil, "next": nil}, nil)
	_, st, err := dialPublish(t, ts.addr, "live", "live")
	if err != nil {
		t.Fatal(err)
	}
	live := waitSession(t, ts.sink)
	cases := map[string][]byte{
		// type-3 chunk on a chunk stream never opened: go-rtmp panics
		// ("invalid state") in its reader.
		"chunk without header": {0xc4, 1, 2, 3, 4},
		// a command message whose AMF0 body is garbage
		"bad AMF": {0x03, 0, 0, 0, 0, 0, 5, 20, 0, 0, 0, 0, 0x02, 0xff, 0xff, 0x11, 0x22},
		// AMF0 string claiming 64 KiB, then EOF
		"truncated AMF": {0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 0x02, 0xff, 0xff},
		// message type 0x7f
		"unknown message type": {0x03, 0, 0, 0, 0, 0, 1, 0x7f, 0, 0, 0, 0, 0},
		// set chunk size to 0
		"chunk size zero": {0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, garbage := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(garbage); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("connection with bad input still open after 20 s")
				}
			}
		})
	}
	select {
	case <-live.closedCh:
		t.Fatal("a bad connection ended another publisher's session")
	default:
	}
	// The live publisher can still send.
	if err := st.Write(6, 0, &message.VideoMessage{Payload: bytes.NewReader([]byte{0x17, 0x02, 0, 0, 0})}); err != nil {
		t.Fatalf("live publisher write: %v", err)
	}
	if _, _, err := dialPublish(t, ts.addr, "live", "next"); err != nil {
		t.Fatalf("new publish after bad connections: %v", err)
	}
	waitSession(t, ts.sink)
}

type panicSink struct{ *fakeSink }

func (p panicSink) Start(ctx context.Context, info StreamInfo) (Session, error) {
	if info.Binding.Identity == "ingress-boom" {
		panic("sink exploded")
	}
	return p.fakeSink.Start(ctx, info)
}

func TestPanicInHandlerClosesOnlyThatConnection(t *testing.T) {
	var sink *fakeSink
	ts := startServer(t, fakeKeys{"boom": nil, "ok": nil}, func(_ *Config, d *Deps) {
		sink = d.Sink.(*fakeSink)
		d.Sink = panicSink{sink}
	})
	ts.sink = sink
	if _, _, err := dialPublish(t, ts.addr, "live", "boom"); err == nil {
		// go-rtmp's client does not wait for onStatus; the server closes.
		time.Sleep(200 * time.Millisecond)
	}
	waitMetric(t, ts.srv.m.panics, 1)
	if _, _, err := dialPublish(t, ts.addr, "live", "ok"); err != nil {
		t.Fatal(err)
	}
	waitSession(t, ts.sink)
	waitMetric(t, ts.srv.m.active, 1)
	// The panicking publish did not keep its key claimed or leak a stream.
	ts.srv.mu.Lock()
	_, boomClaimed := ts.srv.live["boom"]
	ts.srv.mu.Unlock()
	if boomClaimed {
		t.Error("the key whose publish panicked is still claimed")
	}
}

// fakeTranscoder echoes one fake Opus packet per AAC frame and records
// lifetimes, so tests can check no transcode outlives its stream.
type fakeTranscoder struct {
	mu       sync.Mutex
	running  int
	starts   int
	failN    int // ReadOpus fails after this many packets (0 = never)
	startErr error
}

type fakeTranscode struct {
	tr     *fakeTranscoder
	ch     chan []byte
	closed chan struct{}
	once   sync.Once
	n      int
}

func (f *fakeTranscoder) Start(ctx context.Context, cfg AudioConfig) (TranscodeStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	if f.startErr != nil {
		return nil, f.startErr
	}
	f.running++
	return &fakeTranscode{tr: f, ch: make(chan []byte, 8), closed: make(chan struct{})}, nil
}

func (f *fakeTranscoder) live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

func (s *fakeTranscode) WriteAAC(au []byte) error {
	select {
	case s.ch <- au:
		return nil
	case <-s.closed:
		return errors.New("closed")
	}
}

func (s *fakeTranscode) ReadOpus() (OpusPacket, error) {
	select {
	case <-s.ch:
		s.n++
		if s.tr.failN > 0 && s.n > s.tr.failN {
			return OpusPacket{}, errors.New("transcoder died")
		}
		return OpusPacket{Data: []byte{0xfc, 0xaa}, Samples: 960}, nil
	case <-s.closed:
		return OpusPacket{}, io.EOF
	}
}

func (s *fakeTranscode) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.tr.mu.Lock()
		s.tr.running--
		s.tr.mu.Unlock()
	})
	return nil
}

func TestTranscoderEndsWithStream(t *testing.T) {
	tr := &fakeTranscoder{}
	ts := startServer(t, fakeKeys{"k": nil}, func(_ *Config, d *Deps) { d.Transcoder = tr })
	cc, st, err := dialPublish(t, ts.addr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.sink)
	for i, p := range [][]byte{{0xaf, 0x00, 0x11, 0x90}, {0xaf, 0x01, 0x21, 0x10}, {0xaf, 0x01, 0x21, 0x10}} {
		if err := st.Write(4, uint32(i*21), &message.AudioMessage{Payload: bytes.NewReader(p)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, a := s.tracks()
		if a != nil && len(a.packets()) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no audio through the transcoder")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tr.live() != 1 {
		t.Fatalf("%d transcoders running", tr.live())
	}
	_ = cc.Close()
	waitClosed(t, s, 5*time.Second)
	if n := tr.live(); n != 0 {
		t.Fatalf("%d transcoders outlived the stream", n)
	}
}

func TestFFmpegTranscoderKilledOnClose(t *testing.T) {
	requireFFmpeg(t)
	tr := NewFFmpegTranscoder(FFmpegOptions{Path: ffmpegBin})
	cfg, err := parseAudioSpecificConfig([]byte{0x11, 0x90})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tr.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pid := st.(*ffmpegStream).cmd.Process.Pid
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("ffmpeg not running: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("ffmpeg pid %d still exists after Close: %v", pid, err)
	}
	// Context cancellation kills it too.
	ctx, cancel := context.WithCancel(context.Background())
	st, err = tr.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := st.ReadOpus(); err == nil {
		t.Fatal("ReadOpus after cancel returned a packet")
	}
	_ = st.Close()
	// Missing binary is reported as unavailable with the install hint.
	_, err = NewFFmpegTranscoder(FFmpegOptions{Path: "/nonexistent/ffmpeg"}).Start(context.Background(), cfg)
	if !errors.Is(err, ErrTranscoderUnavailable) || !strings.Contains(err.Error(), "apt-get install -y ffmpeg") {
		t.Fatalf("missing ffmpeg: %v", err)
	}
}

type sliceTrack struct {
	mu   sync.Mutex
	pkts []uint32 // timestamps
	seqs []uint16
}

func (s *sliceTrack) WriteRTP(p *rtp.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pkts = append(s.pkts, p.Timestamp)
	s.seqs = append(s.seqs, p.SequenceNumber)
	return nil
}

func (s *sliceTrack) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

func TestAudioPipelineRestartsWithBackoff(t *testing.T) {
	tr := &fakeTranscoder{failN: 3}
	sess := &fakeSession{closedCh: make(chan struct{})}
	track := &sliceTrack{}
	m, _ := newMetrics(nil)
	cfg, _ := parseAudioSpecificConfig([]byte{0x11, 0x90})
	a := startAudioPipeline(context.Background(), audioPipelineOptions{
		Config: cfg, Transcoder: tr, Writer: track, Session: sess,
		RestartMin: 10 * time.Millisecond, RestartMax: 40 * time.Millisecond,
		Logger: testLogger(t), Metrics: m,
	})
	deadline := time.Now().Add(10 * time.Second)
	for track.count() < 9 && time.Now().Before(deadline) {
		a.push([]byte{0x21})
		time.Sleep(2 * time.Millisecond)
	}
	a.stop()
	if track.count() < 9 {
		t.Fatalf("only %d packets across restarts", track.count())
	}
	if got := metricValue(t, m.restarts); got < 2 {
		t.Errorf("restarts metric %v, want >= 2", got)
	}
	sess.mu.Lock()
	nUnavail := len(sess.unavailable)
	sess.mu.Unlock()
	if nUnavail < 2 {
		t.Errorf("AudioUnavailable called %d times", nUnavail)
	}
	if tr.live() != 0 {
		t.Errorf("%d transcodes left running after stop", tr.live())
	}
	// Sequence numbers stay contiguous and timestamps move forward across restarts.
	for i := 1; i < len(track.seqs); i++ {
		if track.seqs[i] != track.seqs[i-1]+1 {
			t.Fatalf("seq gap at %d", i)
		}
		if d := int32(track.pkts[i] - track.pkts[i-1]); d < 960 {
			t.Fatalf("timestamp step %d at %d", d, i)
		}
	}
}

func TestAudioPipelineTranscoderMissing(t *testing.T) {
	tr := &fakeTranscoder{startErr: ErrTranscoderUnavailable}
	sess := &fakeSession{closedCh: make(chan struct{})}
	m, _ := newMetrics(nil)
	cfg, _ := parseAudioSpecificConfig([]byte{0x11, 0x90})
	a := startAudioPipeline(context.Background(), audioPipelineOptions{
		Config: cfg, Transcoder: tr, Writer: &sliceTrack{}, Session: sess,
		RestartMin: 5 * time.Millisecond, RestartMax: 10 * time.Millisecond,
		Logger: testLogger(t), Metrics: m,
	})
	for i := 0; i < 200; i++ { // pushing never blocks while audio is down
		a.push([]byte{0x21})
	}
	time.Sleep(50 * time.Millisecond)
	a.stop()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if len(sess.unavailable) == 0 || !errors.Is(sess.unavailable[0], ErrTranscoderUnavailable) {
		t.Fatalf("unavailable: %v", sess.unavailable)
	}
}

// waitKeyFree waits until the server has released key (it does so right
// after the Session's Close returns).
func waitKeyFree(t *testing.T, srv *Server, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv.mu.Lock()
		_, live := srv.live[key]
		srv.mu.Unlock()
		if !live {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %q still live 5 s after its session closed", key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMetric waits (bounded) for a gauge or counter to reach want.
func waitMetric(t *testing.T, m prometheus.Metric, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, m) != want {
		if time.Now().After(deadline) {
			t.Fatalf("metric %v, want %v", metricValue(t, m), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOversizedMessageClosesConnection(t *testing.T) {
	ts := startServer(t, fakeKeys{"k": nil}, func(c *Config, _ *Deps) { c.MaxMessageSize = 1024 })
	_, st, err := dialPublish(t, ts.addr, "live", "k")
	if err != nil {
		t.Fatal(err)
	}
	s := waitSession(t, ts.sink)
	big := append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 2000)...)
	if err := st.Write(6, 0, &message.VideoMessage{Payload: bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s, 5*time.Second)
	waitMetric(t, ts.srv.m.refused.WithLabelValues(reasonTooLarge), 1)
}
