package sfu_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// Network tests: real pion clients (sfutest) and the SFU on pion's
// virtual network, or on the real loopback interface.

type testEnv struct {
	t    testing.TB
	vnet *sfutest.VNet // nil on the real network
	sfu  *sfu.SFU
	reg  *prometheus.Registry
	log  *slog.Logger
	stop func() // cancels Run and waits for it; idempotent

	clientNetworks []webrtc.NetworkType // loopback env: restrict clients (e.g. TCP only)
	clientIface    string               // real network: clients use only this interface (default lo)
}

func testLogger() *slog.Logger {
	if os.Getenv("SFU_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestEnv(t testing.TB, cfg sfu.Config) *testEnv {
	t.Helper()
	log := testLogger()
	// The network's cleanup runs after the SFU stopped.
	env := &testEnv{t: t, vnet: sfutest.NewVNet(t, log), reg: prometheus.NewRegistry(), log: log}
	cfg.TCPPort = 0 // vnet has no TCP
	// SFU_TEST_ESTIMATOR=pion runs the tests that estimate bandwidth on
	// the other estimator (sfu.bandwidth_estimator), to compare them.
	if e := os.Getenv("SFU_TEST_ESTIMATOR"); e != "" {
		cfg.BandwidthEstimator = e
	}
	env.startSFU(cfg, env.vnet.SFU)
	return env
}

// tilesOnly is the default configuration without bandwidth estimation:
// the layers follow the tiles alone. For tests of mechanics that predate
// estimation (dynacast's pauses, upstream NACKs), whose figures assume no
// estimate in between; the estimation's own tests turn it on.
func tilesOnly() sfu.Config {
	cfg := sfu.DefaultConfig()
	cfg.BandwidthEstimation = false
	return cfg
}

// newLoopbackEnv runs the SFU on the real network, restricted to the
// loopback interface (tests never touch other addresses).
func newLoopbackEnv(t testing.TB, cfg sfu.Config) *testEnv {
	env := &testEnv{t: t, reg: prometheus.NewRegistry(), log: testLogger()}
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.CIDRs = []string{"127.0.0.0/8"}
	env.startSFU(cfg, nil)
	return env
}

func (env *testEnv) startSFU(cfg sfu.Config, n transport.Net) {
	t := env.t
	var err error
	env.sfu, err = sfu.New(cfg, sfu.Deps{Logger: env.log, Registry: env.reg, Net: n})
	if err != nil {
		t.Fatal(err)
	}
	env.stop = testkit.RunInBackground(t, "Run", env.sfu.Run)
}

func (env *testEnv) newClient(room, id string, opts sfu.JoinOptions) *sfutest.Client {
	return env.newClientWith(room, id, opts, sfutest.Options{})
}

// newClientWith is newClient with options beyond the env's network.
func (env *testEnv) newClientWith(room, id string, opts sfu.JoinOptions, o sfutest.Options) *sfutest.Client {
	env.t.Helper()
	o.Logger, o.VNet, o.Interface, o.NetworkTypes = env.log, env.vnet, env.clientIface, env.clientNetworks
	return sfutest.Join(env.t, env.sfu, room, id, opts, o)
}
