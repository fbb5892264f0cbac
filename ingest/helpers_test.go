package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
)

// The network tests run the real SFU on 127.0.0.1 rather than on pion's
// vnet inside synctest: the end-to-end tests drive a real ffmpeg over
// kernel TCP and an HTTP server, and goroutines blocked in real syscalls
// are not durably blocked, so a fake clock cannot drive them. Every wait
// below is bounded.

func testLogger(t testing.TB) *slog.Logger {
	if v := os.Getenv("INGEST_TEST_DEBUG"); v != "" {
		lvl := slog.LevelDebug
		if v == "info" {
			lvl = slog.LevelInfo
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// startSFU runs a real SFU restricted to loopback until the test ends.
func startSFU(t testing.TB) *sfu.SFU {
	t.Helper()
	cfg := sfu.DefaultConfig()
	cfg.UDPPort = testkit.FreeUDPPort(t)
	cfg.TCPPort = 0
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.CIDRs = []string{"127.0.0.0/8"}
	cfg.PLIInterval = 0 // every viewer PLI goes upstream: tests count them
	s, err := sfu.New(cfg, sfu.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// Run's result is the SFU's own tests' business; here it only has to
	// return.
	testkit.RunInBackground(t, "SFU Run", func(ctx context.Context) error { _ = s.Run(ctx); return nil })
	return s
}

// startService runs a Service until the test ends (cleanup waits for Run).
func startService(t testing.TB, cfg Config, deps Deps) (*Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	deps.Registerer = reg
	if deps.Logger == nil {
		deps.Logger = testLogger(t)
	}
	svc, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	// Run's result is checked by the shutdown test; here it only has to
	// return.
	testkit.RunInBackground(t, "Service Run", func(ctx context.Context) error { _ = svc.Run(ctx); return nil })
	return svc, reg
}

// fakeDir records Directory calls as strings, in order.
type fakeDir struct {
	mu     sync.Mutex
	calls  []string
	refuse error
}

func (d *fakeDir) add(s string) {
	d.mu.Lock()
	d.calls = append(d.calls, s)
	d.mu.Unlock()
}

func (d *fakeDir) AddStream(room, pid, identity, name string) error {
	d.mu.Lock()
	refuse := d.refuse
	d.mu.Unlock()
	if refuse != nil {
		return refuse
	}
	d.add(fmt.Sprintf("add %s %s %s %s", room, pid, identity, name))
	return nil
}

func (d *fakeDir) StreamTrackPublished(room, pid string, t sfu.TrackInfo, source string) {
	d.add(fmt.Sprintf("track %s %s %s %s %s", room, pid, t.Kind, t.Codec, source))
}

func (d *fakeDir) StreamTrackUnpublished(room, pid string, t sfu.TrackInfo) {
	d.add(fmt.Sprintf("untrack %s %s %s", room, pid, t.Kind))
}

func (d *fakeDir) StreamAudioUnavailable(room, pid, reason string) {
	d.add(fmt.Sprintf("audio %s %s %q", room, pid, reason))
}

func (d *fakeDir) RemoveStream(room, pid string) { d.add(fmt.Sprintf("remove %s %s", room, pid)) }

func (d *fakeDir) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func (d *fakeDir) count(prefix string) int {
	n := 0
	for _, c := range d.all() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// fakeKeys is an rtmp.KeyStore for tests that do not need SQLite.
type fakeKeys map[string]rtmp.Binding

func (k fakeKeys) Lookup(_ context.Context, key string) (rtmp.Binding, error) {
	if key == "revoked" {
		return rtmp.Binding{}, rtmp.ErrRevoked
	}
	b, ok := k[key]
	if !ok {
		return rtmp.Binding{}, rtmp.ErrUnknownKey
	}
	return b, nil
}

// viewer is a pion subscriber joined to the SFU like a browser.
type viewer struct {
	t    testing.TB
	peer *sfu.Peer
	pc   *webrtc.PeerConnection
	evq  chan func()
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending []webrtc.ICECandidateInit
	tracks  map[string]*rxTrack // by track id
}

type rxTrack struct {
	streamID, id string
	kind         webrtc.RTPCodecType
	codec        webrtc.RTPCodecParameters
	ssrc         webrtc.SSRC
	pkts         []*rtp.Packet // first maxKept packets
	count        int
	ended        bool
}

const maxKept = 4000

func newViewer(t testing.TB, s *sfu.SFU, room, id string) *viewer {
	t.Helper()
	se := webrtc.SettingEngine{LoggerFactory: logging.PionFactory(testLogger(t))}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{t: t, pc: pc, evq: make(chan func(), 1024), done: make(chan struct{}), tracks: map[string]*rxTrack{}}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		// Fires only after SetLocalDescription, so v.peer is set.
		if c != nil {
			_ = v.peer.AddICECandidate(sfu.Subscriber, c.ToJSON())
		}
	})
	pc.OnTrack(v.onTrack)
	v.peer, err = s.Join(room, id, sfu.JoinOptions{Events: v, CanSubscribe: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	v.wg.Go(v.loop)
	t.Cleanup(v.close)
	return v
}

func (v *viewer) close() {
	_ = v.peer.Close()
	_ = v.pc.Close()
	close(v.done)
	v.wg.Wait()
}

func (v *viewer) loop() {
	for {
		select {
		case <-v.done:
			return
		case f := <-v.evq:
			f()
		}
	}
}

func (v *viewer) post(f func()) {
	select {
	case v.evq <- f:
	default:
		v.t.Error("viewer event queue full")
	}
}

// sfu.PeerEvents: queue only.
func (v *viewer) SubscriberOffer(offer webrtc.SessionDescription) {
	v.post(func() {
		// pion as an answerer sometimes picks new ICE credentials when a
		// renegotiation arrives before its ICE transport started (seen
		// here as "username mismatch" and a connection stuck in
		// "connecting"); browsers do not. Let the first negotiation's ICE
		// come up before applying the next offer (bounded).
		if v.pc.RemoteDescription() != nil {
			for i := 0; i < 500 && v.pc.ICEConnectionState() != webrtc.ICEConnectionStateConnected &&
				v.pc.ICEConnectionState() != webrtc.ICEConnectionStateCompleted; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
		v.mu.Lock()
		if err := v.pc.SetRemoteDescription(offer); err != nil {
			v.mu.Unlock()
			return // closing
		}
		for _, c := range v.pending {
			_ = v.pc.AddICECandidate(c)
		}
		v.pending = nil
		v.mu.Unlock()
		answer, err := v.pc.CreateAnswer(nil)
		if err == nil {
			err = v.pc.SetLocalDescription(answer)
		}
		if err == nil {
			err = v.peer.HandleAnswer(answer)
		}
		if err != nil {
			v.t.Logf("viewer answer: %v", err)
		}
	})
}

func (v *viewer) ICECandidate(target sfu.Target, c *webrtc.ICECandidateInit) {
	if c == nil || target != sfu.Subscriber {
		return
	}
	// Not through the event queue: the queue may be holding a later
	// offer until ICE is up, and ICE needs these candidates.
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pc.RemoteDescription() == nil {
		v.pending = append(v.pending, *c)
		return
	}
	_ = v.pc.AddICECandidate(*c)
}

func (v *viewer) TrackPublished(sfu.TrackInfo)                           {}
func (v *viewer) TrackUnpublished(sfu.TrackInfo)                         {}
func (v *viewer) ConnectionState(sfu.Target, webrtc.PeerConnectionState) {}

func (v *viewer) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	rt := &rxTrack{streamID: tr.StreamID(), id: tr.ID(), kind: tr.Kind(), codec: tr.Codec(), ssrc: tr.SSRC()}
	v.mu.Lock()
	v.tracks[tr.ID()] = rt
	v.mu.Unlock()
	v.wg.Go(func() {
		for {
			if _, _, err := recv.ReadRTCP(); err != nil {
				return
			}
		}
	})
	for {
		p, _, err := tr.ReadRTP()
		v.mu.Lock()
		if err != nil {
			rt.ended = true
			v.mu.Unlock()
			return
		}
		rt.count++
		if len(rt.pkts) < maxKept {
			rt.pkts = append(rt.pkts, p)
		}
		v.mu.Unlock()
	}
}

// waitTracksEnded waits until the viewer has seen n tracks and every one
// of them ended (the SFU renegotiated them away). The limit is generous:
// under the race detector with every package's tests in parallel on two
// cores this took over 10 s twice. On failure it says which tracks are
// still open.
func (v *viewer) waitTracksEnded(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v.mu.Lock()
		var open []string
		for _, rt := range v.tracks {
			if !rt.ended {
				open = append(open, fmt.Sprintf("%s %s (%d packets)", rt.kind, rt.id, rt.count))
			}
		}
		seen := len(v.tracks)
		v.mu.Unlock()
		if seen == n && len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer: %d tracks seen (want %d), still open after 30 s: %v", seen, n, open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// track returns a snapshot of the first track of this kind.
func (v *viewer) track(kind webrtc.RTPCodecType) (rxTrack, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, rt := range v.tracks {
		if rt.kind == kind {
			c := *rt
			c.pkts = append([]*rtp.Packet(nil), rt.pkts...)
			return c, true
		}
	}
	return rxTrack{}, false
}

func (v *viewer) received(kind webrtc.RTPCodecType) int {
	rt, ok := v.track(kind)
	if !ok {
		return 0
	}
	return rt.count
}

func (v *viewer) sendPLI(ssrc webrtc.SSRC) error {
	return v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
}

// H.264 helpers shared by the tests.

const (
	nalIDR   = 5
	nalSPS   = 7
	nalPPS   = 8
	nalSTAPA = 24
	nalFUA   = 28
)

// nalTypes lists the NAL unit types an RTP H.264 payload carries (the
// fragmented type for the first FU-A fragment only).
func nalTypes(payload []byte) []byte {
	if len(payload) == 0 {
		return nil
	}
	switch t := payload[0] & 0x1f; t {
	case nalSTAPA:
		var out []byte
		for i := 1; i+2 < len(payload); {
			n := int(payload[i])<<8 | int(payload[i+1])
			i += 2
			if n == 0 || i+n > len(payload) {
				break
			}
			out = append(out, payload[i]&0x1f)
			i += n
		}
		return out
	case nalFUA:
		if len(payload) > 1 && payload[1]&0x80 != 0 {
			return []byte{payload[1] & 0x1f}
		}
		return nil
	default:
		return []byte{t}
	}
}

// checkParamSetsBeforeIDR asserts that the first IDR a viewer received
// was preceded by an SPS and a PPS.
func checkParamSetsBeforeIDR(t testing.TB, pkts []*rtp.Packet) {
	t.Helper()
	var seen []byte
	for _, p := range pkts {
		for _, n := range nalTypes(p.Payload) {
			if n == nalIDR {
				if !containsByte(seen, nalSPS) || !containsByte(seen, nalPPS) {
					t.Fatalf("first IDR arrived after NAL types %v: want SPS (7) and PPS (8) before it", seen)
				}
				return
			}
			seen = append(seen, n)
		}
	}
	t.Fatalf("no IDR among %d received video packets (NAL types %v)", len(pkts), seen)
}

func containsByte(b []byte, x byte) bool {
	for _, c := range b {
		if c == x {
			return true
		}
	}
	return false
}
