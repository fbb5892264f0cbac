package ingest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/ingest/internal/whipout"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
)

// clusterNodes are two nodes of a cluster on loopback, each with its own
// SFU: A hosts the rooms and serves WHIP behind an HTTP server, B places
// every room on A. Both read one key store, as they read one PostgreSQL
// in cluster mode.
type clusterNodes struct {
	keys         *KeyStore
	sfuA, sfuB   *sfu.SFU
	a, b         *Service
	regA, regB   *prometheus.Registry
	dirA, dirB   *fakeDir
	urlA         string
	whipRequests *requestLog
}

// requestLog records the method and path of each request node A serves.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
	l.mu.Unlock()
}

func (l *requestLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func startCluster(t *testing.T) *clusterNodes {
	t.Helper()
	ks, err := OpenKeyStore(context.Background(), filepath.Join(t.TempDir(), "ingress.db"), KeyStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	c := &clusterNodes{keys: ks, dirA: &fakeDir{}, dirB: &fakeDir{}, whipRequests: &requestLog{}}
	cfg := DefaultConfig()
	cfg.ReconnectGrace = 200 * time.Millisecond
	cfg.KeyCheckInterval = 200 * time.Millisecond
	c.sfuA, c.sfuB = startSFU(t), startSFU(t)
	c.a, c.regA = startService(t, cfg, Deps{Media: c.sfuA, Keys: ks, Directory: c.dirA})
	h := c.a.WHIPHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.whipRequests.add(r)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.urlA = srv.URL
	c.b, c.regB = startService(t, cfg, Deps{Media: c.sfuB, Keys: ks, Directory: c.dirB,
		Placer: &fakePlacer{host: srv.URL + "/"}}) // a trailing slash, as an operator may write it
	return c
}

func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mf := testkit.MetricFamily(t, reg, name)
	if len(mf.GetMetric()) != 1 {
		t.Fatalf("%s has %d series", name, len(mf.GetMetric()))
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

func TestRTMPRelayedToHostingNode(t *testing.T) {
	c := startCluster(t)
	key, err := c.keys.Create(context.Background(), KeyRequest{Room: "stage", Name: "Main Stage"})
	if err != nil {
		t.Fatal(err)
	}
	vA := newViewer(t, c.sfuA, "stage", "PA_viewer_a")
	vB := newViewer(t, c.sfuB, "stage", "PA_viewer_b")

	// The RTMP server on B accepted the key and starts the session.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // rtmp's bound on Start
	defer cancel()
	sess, err := c.b.Start(ctx, rtmp.StreamInfo{Binding: rtmp.Binding{Room: key.Room, Name: key.Name, Identity: key.Identity, KeyID: key.ID},
		StreamID: "RT_relay", RemoteAddr: "127.0.0.1:1", Key: key.Secret})
	if err != nil {
		t.Fatalf("Start on B: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = sess.Close()
		}
	}()
	vw, err := sess.AddVideoTrack(h264Spec())
	if err != nil {
		t.Fatal(err)
	}
	aw, err := sess.AddAudioTrack(opusSpec())
	if err != nil {
		t.Fatal(err)
	}
	src := &mediaSource{video: vw, audio: aw}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { src.run(t, stop) })
	stopMedia := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopMedia()

	// A has the stream as an ordinary WHIP publish, its viewer gets it.
	testkit.Eventually(t, 15*time.Second, "A's viewer receives H.264 and Opus", func() bool {
		return vA.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 40 && vA.ReceivedKind(webrtc.RTPCodecTypeAudio) >= 40
	})
	streamsA := c.a.Streams()
	if len(streamsA) != 1 || streamsA[0].Protocol != "whip" || streamsA[0].Identity != "ingress-main-stage" || streamsA[0].RelayedTo != "" {
		t.Fatalf("A's streams %+v", streamsA)
	}
	pid := streamsA[0].ParticipantID
	if c.dirA.count("add stage "+pid+" ingress-main-stage Main Stage") != 1 ||
		c.dirA.count("track stage "+pid+" video video/H264 camera") != 1 ||
		c.dirA.count("track stage "+pid+" audio audio/opus microphone") != 1 {
		t.Fatalf("A's directory calls %v", c.dirA.all())
	}
	vt, _ := vA.TrackOfKind(webrtc.RTPCodecTypeVideo)
	if !strings.HasPrefix(vt.StreamID, pid+"|") {
		t.Fatalf("A's viewer got stream id %q, want %s|<sid>", vt.StreamID, pid)
	}
	checkParamSetsBeforeIDR(t, vt.Packets)
	at, _ := vA.TrackOfKind(webrtc.RTPCodecTypeAudio)
	for _, p := range at.Packets {
		if len(p.Payload) != 6 || p.Payload[0] != 0xfc || p.Payload[4] != 0xAA {
			t.Fatalf("audio payload %x changed on the way", p.Payload)
		}
	}

	// Nothing of it on B but the relay itself.
	if calls := c.dirB.all(); len(calls) != 0 {
		t.Fatalf("B's directory calls %v, want none", calls)
	}
	if n := vB.ReceivedKind(webrtc.RTPCodecTypeVideo) + vB.ReceivedKind(webrtc.RTPCodecTypeAudio); n != 0 {
		t.Fatalf("B's viewer received %d packets", n)
	}
	streamsB := c.b.Streams()
	if len(streamsB) != 1 || streamsB[0].RelayedTo != c.urlA || streamsB[0].Protocol != "rtmp" ||
		streamsB[0].Room != "stage" || streamsB[0].Identity != "ingress-main-stage" || streamsB[0].ParticipantID != "" {
		t.Fatalf("B's streams %+v, want one relayed to %s", streamsB, c.urlA)
	}
	if gaugeValue(t, c.regB, "parley_ingest_relays") != 1 || counterValue(t, c.regB, "parley_ingest_relayed_total") != 1 {
		t.Fatal("B's relay metrics do not count the relay")
	}

	// A's viewer's key-frame request reaches B, which cannot pass it on
	// to an RTMP encoder and counts it.
	testkit.Eventually(t, 10*time.Second, "A's viewer PLI counted on B", func() bool {
		if err := vA.SendPLI(vt.SSRC); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		return c.b.Streams()[0].KeyframeRequests > 0
	})
	if counterValue(t, c.regB, "parley_ingest_keyframe_requests_total", "rtmp", "unsupported") < 1 {
		t.Fatal("B's keyframe metric does not count the request")
	}

	// Close on B DELETEs the WHIP resource: A ends the stream at once.
	stopMedia()
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if n := c.whipRequests.count("DELETE /whip/"); n != 1 {
		t.Fatalf("%d DELETEs reached A, want 1", n)
	}
	testkit.Eventually(t, 5*time.Second, "A's participant leaves after the grace", func() bool {
		return len(c.a.Streams()) == 0 && c.dirA.count("remove stage "+pid) == 1
	})
	if len(c.b.Streams()) != 0 || gaugeValue(t, c.regB, "parley_ingest_relays") != 0 {
		t.Fatalf("B still lists %+v", c.b.Streams())
	}
}

// A WHIP refusal on the hosting node refuses the RTMP publish on B, and
// nothing is left behind.
func TestRTMPRelayRefusedByHostingNode(t *testing.T) {
	c := startCluster(t)
	key, err := c.keys.Create(context.Background(), KeyRequest{Room: "stage", Name: "Cam"})
	if err != nil {
		t.Fatal(err)
	}
	b := rtmp.Binding{Room: key.Room, Name: key.Name, Identity: key.Identity, KeyID: key.ID}
	// The identity is already live on A (an RTMP publish straight to it).
	local := startStream(t, c.a, b)
	defer func() { _ = local.Close() }()
	for _, tc := range []struct {
		name, key string
		want      *whipout.StatusError
	}{
		{"unknown key", "sk_unknown", &whipout.StatusError{Code: http.StatusUnauthorized, Message: "unknown stream key"}},
		{"identity live on A", key.Secret, &whipout.StatusError{Code: http.StatusConflict, Message: "this stream is already live"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.b.Start(ctx, rtmp.StreamInfo{Binding: b, StreamID: "RT_x", Key: tc.key})
		cancel()
		var se *whipout.StatusError
		if !errors.As(err, &se) || *se != *tc.want {
			t.Fatalf("%s: Start: %v, want the hosting node's %v", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), tc.key) {
			t.Fatalf("%s: error %q contains the stream key", tc.name, err)
		}
	}
	if len(c.b.Streams()) != 0 || len(c.a.Streams()) != 1 {
		t.Fatalf("streams: A %+v (want the local one), B %+v (want none)", c.a.Streams(), c.b.Streams())
	}
	if counterValue(t, c.regB, "parley_ingest_refused_total", "rtmp", "relay") != 2 {
		t.Fatal("the refused relay is not counted")
	}
	if gaugeValue(t, c.regB, "parley_ingest_relays") != 0 {
		t.Fatal("the refused relay is still counted as live")
	}
}

// When placement fails the publish is refused (OBS retries); nothing
// starts locally.
func TestRTMPPlacementFailureRefuses(t *testing.T) {
	dir := &fakeDir{}
	svc, reg := startService(t, sinkConfig(), Deps{Media: startSFU(t), Directory: dir,
		Placer: &fakePlacer{err: errors.New("redis: connection refused")}})
	_, err := svc.Start(context.Background(), rtmp.StreamInfo{Binding: rtmp.Binding{Room: "stage", Name: "X"}, Key: "sk_secret"})
	if err == nil || !strings.Contains(err.Error(), "which node hosts room") {
		t.Fatalf("Start: %v, want a placement error", err)
	}
	if len(svc.Streams()) != 0 || len(dir.all()) != 0 {
		t.Fatalf("streams %+v, directory %v", svc.Streams(), dir.all())
	}
	if counterValue(t, reg, "parley_ingest_refused_total", "rtmp", "placement") != 1 {
		t.Fatal("placement refusal not counted")
	}
	// A placer that says "here" keeps today's local publish.
	svc2, _ := startService(t, sinkConfig(), Deps{Media: startSFU(t), Directory: &fakeDir{}, Placer: &fakePlacer{}})
	sess := startStream(t, svc2, rtmp.Binding{Room: "stage", Name: "Local"})
	defer func() { _ = sess.Close() }()
	if st := svc2.Streams(); len(st) != 1 || st[0].RelayedTo != "" || st[0].ParticipantID == "" {
		t.Fatalf("local streams %+v", st)
	}
}

// startRelayed starts an RTMP session on B for a new key of room stage
// and writes media until the test ends; it returns the session, the key
// and the writers' latest errors.
func startRelayed(t *testing.T, c *clusterNodes, name string) (rtmp.Session, Key, func() (video, audio error)) {
	t.Helper()
	key, err := c.keys.Create(context.Background(), KeyRequest{Room: "stage", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := c.b.Start(ctx, rtmp.StreamInfo{Binding: rtmp.Binding{Room: key.Room, Name: key.Name, Identity: key.Identity, KeyID: key.ID},
		StreamID: "RT_" + name, Key: key.Secret})
	if err != nil {
		t.Fatalf("Start on B: %v", err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	vw, err := sess.AddVideoTrack(h264Spec())
	if err != nil {
		t.Fatal(err)
	}
	aw, err := sess.AddAudioTrack(opusSpec())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var verr, aerr error
	src := &mediaSource{video: errWriter{vw, func(err error) { mu.Lock(); verr = err; mu.Unlock() }},
		audio: errWriter{aw, func(err error) { mu.Lock(); aerr = err; mu.Unlock() }}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { src.run(t, stop) })
	t.Cleanup(func() { close(stop); wg.Wait() })
	testkit.Eventually(t, 10*time.Second, "the stream live on A", func() bool { return len(c.a.Streams()) == 1 })
	return sess, key, func() (error, error) { mu.Lock(); defer mu.Unlock(); return verr, aerr }
}

// errWriter records its writer's errors instead of failing the test
// (mediaSource reports every error).
type errWriter struct {
	w   rtmp.TrackWriter
	got func(error)
}

func (e errWriter) WriteRTP(p *rtp.Packet) error {
	if err := e.w.WriteRTP(p); err != nil {
		e.got(err)
	}
	return nil
}

// A key revoked while the relay is live ends it on B (the RTMP side
// hears ErrRevoked) as well as on A.
func TestRTMPRelayRevokedWhileLive(t *testing.T) {
	c := startCluster(t)
	_, key, errs := startRelayed(t, c, "Cam")
	if _, err := c.keys.Revoke(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "B's writers fail with ErrRevoked", func() bool {
		v, a := errs()
		return errors.Is(v, rtmp.ErrRevoked) && errors.Is(a, rtmp.ErrRevoked)
	})
	testkit.Eventually(t, 10*time.Second, "A ends the stream", func() bool { return len(c.a.Streams()) == 0 })
	if counterValue(t, c.regB, "parley_ingest_revoked_live_total", "rtmp") != 1 {
		t.Fatal("B does not count the revocation")
	}
}

// The hosting node ending the stream on its side (its shutdown, say)
// ends the RTMP publish on B: the writers fail with ErrSessionEnded, so
// OBS reconnects and is placed again.
func TestRTMPRelayEndsWhenHostingNodeEndsIt(t *testing.T) {
	c := startCluster(t)
	_, _, errs := startRelayed(t, c, "Cam")
	c.a.life.Lock()
	var st *stream
	for _, e := range c.a.entries {
		st = e.live
	}
	c.a.life.Unlock()
	st.close() // closes A's PeerConnection without a DELETE from B
	// pion says disconnected after 5 s without answers, then the grace.
	testkit.Eventually(t, 5*time.Second+relayDisconnectedGrace+5*time.Second, "B's writers fail with ErrSessionEnded", func() bool {
		v, a := errs()
		return errors.Is(v, rtmp.ErrSessionEnded) && errors.Is(a, rtmp.ErrSessionEnded)
	})
	if s := c.b.Streams(); len(s) != 1 {
		t.Fatalf("B's streams %+v: the relay stays listed until the RTMP side closes it", s)
	}
}

// Shutting B's Service down DELETEs its relays' resources, so the
// hosting node ends their streams at once; the RTMP server's later Close
// does nothing more.
func TestRTMPRelayEndsAtShutdown(t *testing.T) {
	c := startCluster(t)
	svc, err := New(DefaultConfig(), Deps{Media: c.sfuB, Keys: c.keys, Placer: &fakePlacer{host: c.urlA}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.RunInBackground(t, "Service Run", svc.Run)
	key, err := c.keys.Create(context.Background(), KeyRequest{Room: "stage", Name: "Cam"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := svc.Start(ctx, rtmp.StreamInfo{Binding: rtmp.Binding{Room: key.Room, Name: key.Name, Identity: key.Identity, KeyID: key.ID},
		StreamID: "RT_shutdown", Key: key.Secret})
	if err != nil {
		t.Fatal(err)
	}
	vw, err := sess.AddVideoTrack(h264Spec())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the stream on A", func() bool { return len(c.a.Streams()) == 1 })

	stop()
	if n := c.whipRequests.count("DELETE /whip/"); n != 1 {
		t.Fatalf("%d DELETEs reached A at B's shutdown, want 1", n)
	}
	testkit.Eventually(t, 5*time.Second, "A ends the stream", func() bool { return len(c.a.Streams()) == 0 })
	if len(svc.Streams()) != 0 {
		t.Fatalf("B lists %+v after shutdown", svc.Streams())
	}
	err = vw.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: []byte{0x41, 0x9a}})
	if !errors.Is(err, rtmp.ErrSessionEnded) {
		t.Fatalf("write after shutdown: %v, want ErrSessionEnded", err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if n := c.whipRequests.count("DELETE /whip/"); n != 1 {
		t.Fatalf("%d DELETEs after the RTMP side's Close, want still 1", n)
	}
	// A Start after shutdown is refused before any request to A.
	if _, err := svc.Start(ctx, rtmp.StreamInfo{Binding: rtmp.Binding{Room: "stage", Name: "Late"}, Key: key.Secret}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after shutdown: %v, want ErrClosed", err)
	}
	if n := c.whipRequests.count("POST"); n != 1 {
		t.Fatalf("%d POSTs reached A, want 1", n)
	}
}

// Relays count against max_streams with local streams: they hold a
// PeerConnection each.
func TestRTMPRelayCountsAgainstMaxStreams(t *testing.T) {
	c := startCluster(t)
	cfg := DefaultConfig()
	cfg.MaxStreams = 1
	svc, reg := startService(t, cfg, Deps{Media: c.sfuB, Keys: c.keys, Placer: &fakePlacer{host: c.urlA}})
	var keys []Key
	for _, name := range []string{"One", "Two"} {
		k, err := c.keys.Create(context.Background(), KeyRequest{Room: "stage", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	start := func(k Key) (rtmp.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return svc.Start(ctx, rtmp.StreamInfo{Binding: rtmp.Binding{Room: k.Room, Name: k.Name, Identity: k.Identity, KeyID: k.ID},
			StreamID: "RT_" + k.Name, Key: k.Secret})
	}
	first, err := start(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := start(keys[1]); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("second relay: %v, want ErrTooManyStreams", err)
	}
	if n := c.whipRequests.count("POST"); n != 1 {
		t.Fatalf("%d POSTs reached A, want only the first relay's", n)
	}
	if counterValue(t, reg, "parley_ingest_refused_total", "rtmp", "max_streams") != 1 {
		t.Fatal("the refusal is not counted")
	}
	// The slot is free again once the relay ends.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := start(keys[1])
	if err != nil {
		t.Fatalf("relay after the first ended: %v", err)
	}
	_ = second.Close()
}
