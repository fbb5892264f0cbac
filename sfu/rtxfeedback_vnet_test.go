package sfu_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
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

// TestRTXFeedbackReachesEstimator: a subscriber losing 20% of its video
// packets (not of their retransmissions) gets retransmissions on its
// RTX SSRC, and pion's receiver names that SSRC in the transport-cc
// feedback it writes next when a retransmission was the last packet
// it got (here about one report in ten). That feedback reaches the
// subscriber connection's estimator, and the SFU's pion no longer
// calls the SRTCP stream of that SSRC unhandled (without the reader,
// it did at the first receiver report about the RTX stream). The
// reader stops when the track goes.
func TestRTXFeedbackReachesEstimator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var unhandled []string
		cfg := sfu.DefaultConfig()
		cfg.BandwidthEstimation = true
		cfg.TCPPort = 0 // vnet has no TCP
		clientLog := testLogger()
		env := &testEnv{t: t, vnet: sfutest.NewVNet(t, clientLog), reg: prometheus.NewRegistry(), log: clientLog}
		var err error
		sfuLog := slog.New(unhandledLog{next: clientLog.Handler(), mu: &mu, msgs: &unhandled})
		env.sfu, err = sfu.New(cfg, sfu.Deps{Logger: sfuLog, Registry: env.reg, Net: env.vnet.SFU})
		if err != nil {
			t.Fatal(err)
		}
		env.stop = testkit.RunInBackground(t, "Run", env.sfu.Run)

		bob := env.newClient("r", "PA_bob", sfu.JoinOptions{CanSubscribe: true})
		ada := env.newClient("r", "PA_ada", sfu.JoinOptions{CanPublish: true})
		ada.Publish()
		testkit.Eventually(t, 10*time.Second, "ada's track published", func() bool { return len(ada.Published()) == 1 })
		sid := ada.Published()[0].SID
		testkit.Eventually(t, 10*time.Second, "bob receiving", func() bool { return bob.Received(sid) >= 100 })

		// VP8 is payload type 96 on the subscriber connection.
		l := &lossy{rnd: rand.New(rand.NewPCG(3, 4)), share: 0.2, from: sfutest.SFUIP, to: bob.IP, pts: [2]byte{96, 96}}
		env.vnet.Router.AddChunkFilter(l.filter)
		rtxBefore := bob.RemoteTracks()[sid].RTX
		time.Sleep(10 * time.Second)
		rtx := bob.RemoteTracks()[sid].RTX - rtxBefore
		fb := sfu.RTXFeedback(bob.Peer)
		t.Logf("10 s at 20%% loss: %d packets on bob's RTX stream, %d transport-cc reports on its RTX SSRC read", rtx, fb)
		if rtx < 100 {
			t.Fatalf("only %d retransmissions reached bob: the test did not run", rtx)
		}
		// About 100 reports in 10 s, 9 to 19 of them on the RTX SSRC in
		// five runs.
		if fb < 3 {
			t.Errorf("%d reports naming bob's RTX SSRC reached the estimator, want at least 3", fb)
		}
		mu.Lock()
		for _, m := range unhandled {
			t.Errorf("SFU: %s", m)
		}
		mu.Unlock()

		// The reader ends with the downTrack.
		if n := sfu.RTXReaders(bob.Peer); n != 1 {
			t.Errorf("bob's connection reads %d RTX SSRCs, want 1", n)
		}
		if err := ada.Peer.Unpublish(sid); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, "bob's RTX reader stopped", func() bool { return sfu.RTXReaders(bob.Peer) == 0 })
	})
}
