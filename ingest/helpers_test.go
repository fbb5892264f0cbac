package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
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

// newViewer joins a pion subscriber to the SFU like a browser, over
// loopback UDP, keeping the first 4000 packets of each track.
func newViewer(t testing.TB, s *sfu.SFU, room, id string) *sfutest.Client {
	t.Helper()
	return sfutest.Join(t, s, room, id, sfu.JoinOptions{CanSubscribe: true, Logger: testLogger(t)},
		sfutest.Options{Logger: testLogger(t), NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}, KeepPackets: 4000})
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
