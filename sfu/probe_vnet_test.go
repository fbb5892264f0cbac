package sfu_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/transport/v5/vnet"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// Simulcast layers of about 130, 360 and 920 kbit/s (one packet every
// 10 ms with these payloads, headers included), so the top layer needs
// about 1.1 Mbit/s of estimate with the selector's margin.
var probeLayerPayloads = []int{120, 400, 1100}

// capEnv is a publisher sending a q/h/f camera and a subscriber behind
// a rate-capped downlink, bandwidth estimation on.
type capEnv struct {
	env  *testEnv
	link *vnet.TBFQueue
	ada  *sfutest.Client
	bob  *sfutest.Client
	sid  string
}

const uncapped = 20_000_000

func newCapEnv(t *testing.T) *capEnv {
	c := newCapClients(t, sfutest.Options{LayerPayloads: probeLayerPayloads})
	c.ada.AddSimulcastTrack("cam", "q", "h", "f")
	c.ada.NegotiatePublisher(false)
	testkit.Eventually(t, 10*time.Second, "camera published", func() bool { return len(c.ada.Published()) == 1 })
	c.sid = c.ada.Published()[0].SID
	return c
}

// newCapClients is the publisher (with opts, no track yet) and the
// subscriber behind an uncapped link of a capEnv, bandwidth estimation
// on.
func newCapClients(t *testing.T, opts sfutest.Options) *capEnv {
	cfg := sfu.DefaultConfig()
	cfg.BandwidthEstimation = true
	env := newTestEnv(t, cfg)
	c := &capEnv{env: env, link: vnet.NewTBFQueue(uncapped, 8*1500, 64*1024)}
	c.setCap(uncapped)
	c.ada = env.newClientWith("room", "PA_ada", sfu.JoinOptions{CanPublish: true}, opts)
	c.bob = env.newClientWith("room", "PA_bob", sfu.JoinOptions{CanSubscribe: true},
		sfutest.Options{Downlink: c.link})
	return c
}

// setCap caps bob's downlink at bps as the network lab does (tc tbf,
// internal/netlab): a bucket of 20 ms at the rate and at least four
// full-size packets, a queue of 200 ms at the rate.
func (c *capEnv) setCap(bps int) {
	c.link.SetRate(bps)
	c.link.SetBurst(max(bps/8/50, 4*1600))
	c.link.SetSize(int64(max(bps/8/5, 4*1600)))
}

// receiver is bob's entry in the camera's receiver stats.
func (c *capEnv) receiver() sfu.ReceiverStats {
	for _, st := range c.ada.Peer.Stats() {
		for _, r := range st.Receivers {
			if r.ParticipantID == "PA_bob" {
				return r
			}
		}
	}
	return sfu.ReceiverStats{}
}

// watch logs bob's estimate and layer every second until stop closes.
func (c *capEnv) watch(t *testing.T, t0 time.Time, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			r := c.receiver()
			t.Logf("t=%2.0fs layer %q estimate %7d probing %v", time.Since(t0).Seconds(), r.Layer, r.EstimatedBps, r.Probing)
		}
	}
}

// TestProbeAfterCapLifted: a subscriber at the top layer is capped to
// 300 kbit/s, falls to the low layer, and after the cap is lifted
// receives the top layer again within 15 s: the probes raise its
// estimate faster than GCC's increase alone (about 8% a second, from
// about 300 kbit/s to the 1.1 Mbit/s the top layer needs: 17 s and
// more). While capped, the clusters that aim above what the link
// carries fail and back off (1, 2, 4, 4 s), and the estimate does not
// rise far above the cap (a token bucket lets a short burst through, so
// a cluster a little above the cap may pass).
func TestProbeAfterCapLifted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCapEnv(t)
		t0 := time.Now()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); c.watch(t, t0, stop) }()
		defer func() { close(stop); <-done }()

		testkit.Eventually(t, 20*time.Second, "bob at the top layer", func() bool { return c.receiver().Layer == "f" })

		c.setCap(300_000)
		capped := time.Now()
		testkit.Eventually(t, 10*time.Second, "bob at the low layer under the cap", func() bool { return c.receiver().Layer == "q" })
		t.Logf("low layer %.1fs after the cap", time.Since(capped).Seconds())
		// A cluster judged no_data learnt nothing about its target (the
		// controller does not mark the target failed, though it waits
		// longer), so it is not counted as a failure. Before the SFU
		// throttled its retransmissions, their flood kept the capped
		// link congested and few clusters went out at all.
		failed := func() float64 {
			return counterValue(t, c.env, "parley_sfu_probes_total", "limited") +
				counterValue(t, c.env, "parley_sfu_probes_total", "aborted")
		}
		probesBefore, failedBefore := counterValue(t, c.env, "parley_sfu_probes_total", ""), failed()
		noDataBefore := counterValue(t, c.env, "parley_sfu_probes_total", "no_data")
		rtxBefore := counterValue(t, c.env, "parley_sfu_retransmits_total", "")
		bytesBefore := counterValue(t, c.env, "parley_sfu_bytes_forwarded_total", "")
		maxEst := 0
		for range 20 {
			time.Sleep(time.Second)
			r := c.receiver()
			maxEst = max(maxEst, r.EstimatedBps)
			if r.Layer == "f" {
				t.Fatalf("top layer under a 300 kbit/s cap (estimate %d)", r.EstimatedBps)
			}
		}
		clusters := counterValue(t, c.env, "parley_sfu_probes_total", "") - probesBefore
		failures := failed() - failedBefore
		t.Logf("capped 20 s: %v clusters, %v failed, %v without data, highest estimate %d; %v retransmissions, %.0f kbit/s of media forwarded",
			clusters, failures, counterValue(t, c.env, "parley_sfu_probes_total", "no_data")-noDataBefore, maxEst, counterValue(t, c.env, "parley_sfu_retransmits_total", "")-rtxBefore,
			(counterValue(t, c.env, "parley_sfu_bytes_forwarded_total", "")-bytesBefore)*8/20/1000)
		// Waits of 1, 2, 4, 4 s after failures (probe.DefaultMaxInterval),
		// and 1 s for a smaller step: about seven failures in 20 s (at
		// most eight here; one a second would be twenty).
		if failures > 8 {
			t.Errorf("%v probe clusters failed in 20 s under the cap, want the back-off to space them", failures)
		}
		if maxEst > 900_000 {
			t.Errorf("estimate rose to %d under a 300 kbit/s cap", maxEst)
		}

		c.setCap(uncapped)
		lifted := time.Now()
		testkit.Eventually(t, 15*time.Second, "bob back at the top layer within 15 s of the cap lifted",
			func() bool { return c.receiver().Layer == "f" })
		t.Logf("top layer %.1fs after the cap was lifted; %v clusters succeeded in all, %v probe bytes",
			time.Since(lifted).Seconds(), counterValue(t, c.env, "parley_sfu_probes_total", "success"),
			counterValue(t, c.env, "parley_sfu_probe_bytes_total", ""))
	})
}

// TestNoProbeForASingleLayer: a subscriber receiving a single-layer
// camera (about 1 Mbit/s) whose link was short for a few seconds has an
// estimate under what the camera wants once the link is back; it gets
// no probe clusters: a higher estimate would not change what it
// receives (there is no layer to switch to). Clusters are for a
// subscriber held below its layers (TestProbeAfterCapLifted).
func TestNoProbeForASingleLayer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCapClients(t, sfutest.Options{})
		env := c.env
		c.ada.AddTrack("video", "cam")
		c.ada.NegotiatePublisher(false)
		testkit.Eventually(t, 10*time.Second, "camera published", func() bool { return len(c.ada.Published()) == 1 })
		testkit.Eventually(t, 10*time.Second, "bob receives the camera", func() bool { return c.receiver().ParticipantID == "PA_bob" })
		time.Sleep(5 * time.Second)

		c.setCap(600_000)
		time.Sleep(3 * time.Second)
		c.setCap(uncapped)
		low := c.receiver().EstimatedBps
		time.Sleep(15 * time.Second)
		clusters := counterValue(t, env, "parley_sfu_probes_total", "")
		t.Logf("estimate %d as the link came back, %d 15 s later; %v clusters, %v probe bytes", low, c.receiver().EstimatedBps,
			clusters, counterValue(t, env, "parley_sfu_probe_bytes_total", ""))
		if low >= 1_000_000 {
			t.Fatalf("estimate %d as the link came back: the test needs one under the camera's rate", low)
		}
		if clusters != 0 {
			t.Errorf("%v probe clusters for a single-layer camera, want none", clusters)
		}
	})
}
