package sfu_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// unhandledLog keeps the messages of pion's "Incoming unhandled RTCP"
// warnings, and passes every record on to next.
type unhandledLog struct {
	next slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (h unhandledLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h unhandledLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "Incoming unhandled RTCP") {
		h.mu.Lock()
		*h.msgs = append(*h.msgs, r.Message)
		h.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h unhandledLog) WithAttrs(a []slog.Attr) slog.Handler {
	return unhandledLog{next: h.next.WithAttrs(a), mu: h.mu, msgs: h.msgs}
}

func (h unhandledLog) WithGroup(name string) slog.Handler {
	return unhandledLog{next: h.next.WithGroup(name), mu: h.mu, msgs: h.msgs}
}

// rtxEnv is a subscriber losing 20% of its video packets (not of their
// retransmissions), so that it gets retransmissions on its RTX SSRC,
// and pion's receiver names that SSRC in the transport-cc feedback it
// writes next when a retransmission was the last packet it got (here
// about one report in ten). unhandled returns pion's "Incoming
// unhandled RTCP" warnings on the SFU so far.
type rtxEnv struct {
	env       *testEnv
	ada, bob  *sfutest.Client
	sid       string
	mu        sync.Mutex
	unhandled []string
}

func newRTXEnv(t *testing.T) *rtxEnv {
	e := &rtxEnv{}
	cfg := sfu.DefaultConfig()
	cfg.BandwidthEstimation = true
	cfg.TCPPort = 0 // vnet has no TCP
	clientLog := testLogger()
	e.env = &testEnv{t: t, vnet: sfutest.NewVNet(t, clientLog), reg: prometheus.NewRegistry(), log: clientLog}
	var err error
	sfuLog := slog.New(unhandledLog{next: clientLog.Handler(), mu: &e.mu, msgs: &e.unhandled})
	e.env.sfu, err = sfu.New(cfg, sfu.Deps{Logger: sfuLog, Registry: e.env.reg, Net: e.env.vnet.SFU})
	if err != nil {
		t.Fatal(err)
	}
	e.env.stop = testkit.RunInBackground(t, "Run", e.env.sfu.Run)

	e.bob = e.env.newClient("r", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
	e.ada = e.env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
	e.ada.Publish()
	testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(e.ada.Published()) == 1 })
	e.sid = e.ada.Published()[0].SID
	testkit.Eventually(t, 10*time.Second, "bob receiving", func() bool { return e.bob.Received(e.sid) >= 100 })

	// VP8 is payload type 96 on the subscriber connection.
	l := &lossy{rnd: rand.New(rand.NewPCG(3, 4)), share: 0.2, from: sfutest.SFUIP, to: e.bob.IP, pts: [2]byte{96, 96}}
	e.env.vnet.Router.AddChunkFilter(l.filter)
	return e
}

func (e *rtxEnv) unhandledSoFar() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.unhandled)
}

// run lets the call run for d and returns the retransmissions bob got
// and the transport-cc reports on its RTX SSRC that reached the
// estimator meanwhile.
func (e *rtxEnv) run(d time.Duration) (rtx int, fb uint64) {
	rtx0, fb0 := e.bob.RemoteTracks()[e.sid].RTX, sfu.RTXFeedback(e.bob.Peer)
	time.Sleep(d)
	return e.bob.RemoteTracks()[e.sid].RTX - rtx0, sfu.RTXFeedback(e.bob.Peer) - fb0
}

// TestRTXFeedbackReachesEstimator: the feedback that names a
// subscriber's RTX SSRC reaches the subscriber connection's estimator,
// and the SFU's pion no longer calls the SRTCP stream of that SSRC
// unhandled (without the reader, it did at the first receiver report
// about the RTX stream). The reader stops when the track goes.
func TestRTXFeedbackReachesEstimator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newRTXEnv(t)
		rtx, fb := e.run(10 * time.Second)
		t.Logf("10 s at 20%% loss: %d packets on bob's RTX stream, %d transport-cc reports on its RTX SSRC read", rtx, fb)
		if rtx < 100 {
			t.Fatalf("only %d retransmissions reached bob: the test did not run", rtx)
		}
		// About 100 reports in 10 s, 9 to 19 of them on the RTX SSRC in
		// 21 runs.
		if fb < 3 {
			t.Errorf("%d reports naming bob's RTX SSRC reached the estimator, want at least 3", fb)
		}
		for _, m := range e.unhandledSoFar() {
			t.Errorf("SFU: %s", m)
		}

		if n := sfu.RTXReaders(e.bob.Peer); n != 1 {
			t.Errorf("bob's connection reads %d RTX SSRCs, want 1", n)
		}
		if err := e.ada.Peer.Unpublish(e.sid); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "bob's RTX reader stopped", func() bool { return sfu.RTXReaders(e.bob.Peer) == 0 })
	})
}

// TestRTXFeedbackReadAfterUnhandled: when pion's undeclared-stream
// processor took the RTX SSRC's SRTCP stream first (here: the reader
// stopped for 2 s while feedback arrived), the reader opened afterwards
// gets the same stream from srtp and reads it all the same.
func TestRTXFeedbackReadAfterUnhandled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newRTXEnv(t)
		time.Sleep(time.Second)
		sfu.RTXReadersGap(e.bob.Peer, 2*time.Second)
		if len(e.unhandledSoFar()) == 0 {
			t.Fatal("pion did not take the RTX SSRC's RTCP while the reader was stopped: the test did not run")
		}
		rtx, fb := e.run(10 * time.Second)
		t.Logf("10 s at 20%% loss after the gap: %d packets on bob's RTX stream, %d transport-cc reports on its RTX SSRC read", rtx, fb)
		if fb < 3 {
			t.Errorf("%d reports naming bob's RTX SSRC reached the estimator after pion took the stream, want at least 3", fb)
		}
	})
}
