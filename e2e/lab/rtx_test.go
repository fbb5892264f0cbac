package lab

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/e2e"
	"github.com/parleyhq/parley/internal/netlab"
	"github.com/parleyhq/parley/internal/promtext"
)

// Scenario 3 of issue #10: 5% random loss on a subscriber's downlink,
// then on a publisher's uplink.
const (
	// rtxLossWindow is how long each leg drops packets.
	rtxLossWindow = 15 * time.Second
	rtxLossPct    = 5
	// rtxMinFPSShare is the share of the publisher's frame rate the
	// subscriber must keep decoding under loss: the issue's "20 fps or
	// more of the publisher's 30". The lab's cameras run at 15 fps (see
	// launch), so it is asserted as a ratio of what the publisher
	// encoded over the same window.
	rtxMinFPSShare = 20.0 / 30
	// rtxMaxConcealed is the most of the audio the subscriber may
	// conceal audibly under loss, in % (concealment of a silent
	// talker's comfort noise is logged apart: see videoStat.Silent).
	rtxMaxConcealed = 5.0
)

// TestVideoLossRTX: with RTX negotiated on both connections (issue #10,
// scenario 3), 5% loss on a subscriber's downlink is repaired on the
// subscriber's RTX stream (Chromium's inbound-rtp
// retransmittedPacketsReceived grows, the server's retransmissions
// grow), and under 5% loss on the publisher's uplink (the server NACKs
// the publisher, whose RTX stream repairs the cache the subscriber is
// served from) the subscriber keeps decoding. Under either, the
// subscriber decodes at least two thirds of the frames the
// publisher encodes and conceals under 5% of the publisher's audio.
func TestVideoLossRTX(t *testing.T) { videoLossRTX(t, false, rtxLossWindow) }

// TestVideoLossRTXThree is TestVideoLossRTX as the issue describes every
// scenario: three browsers (Cyd publishes too, so Ben's lossy downlink
// carries two cameras) and 25 s legs. It is run by ./scripts/lab, not
// ./scripts/test: on 2 cores the three browsers' own load decides the
// figures (docs/lab/README.md, scenario 3).
func TestVideoLossRTXThree(t *testing.T) { videoLossRTX(t, true, 25*time.Second) }

func videoLossRTX(t *testing.T, three bool, window time.Duration) {
	ctx := testContext(t, 5*time.Minute)
	c := newCall(t, ctx, "lab-rtx")
	ada, ben := c.join("Ada"), c.join("Ben")
	if three {
		c.join("Cyd")
	}
	sid := c.sidOf(ben, "Ada")
	if !poll(ctx, warmUpLimit, func() bool { return videoFrom(ctx, t, ben, sid).Frames > 0 }) {
		t.Fatalf("Ben does not decode Ada's camera within %v", warmUpLimit)
	}

	start := videoFrom(ctx, t, ben, sid)
	time.Sleep(5 * time.Second)
	before := videoFrom(ctx, t, ben, sid)
	t.Logf("no loss, 5 s: Ben decoded %d frames of Ada's camera", before.Frames-start.Frames)

	// leg drops rtxLossPct% on one link for window and returns
	// what Ben received and the server counted over it.
	leg := func(what string, h *netlab.Host, dir netlab.Direction) (videoStat, videoStat, rtxMetrics, rtxMetrics) {
		m0 := c.rtxMetrics()
		v0, enc0 := videoFrom(ctx, t, ben, sid), maxFramesEncoded(ctx, t, ada)
		if err := h.SetLoss(dir, rtxLossPct); err != nil {
			t.Fatal(err)
		}
		time.Sleep(window)
		if err := h.SetLoss(dir, 0); err != nil {
			t.Fatal(err)
		}
		v1, enc1 := videoFrom(ctx, t, ben, sid), maxFramesEncoded(ctx, t, ada)
		time.Sleep(time.Second) // the last repairs
		m1 := c.rtxMetrics()
		t.Logf("%d%% loss on %s for %v: %s", rtxLossPct, what, window, m1.sub(m0))
		share := float64(v1.Frames-v0.Frames) / float64(max(enc1-enc0, 1))
		samples := float64(max(v1.Samples-v0.Samples, 1))
		concealed := 100 * float64((v1.Concealed-v1.Silent)-(v0.Concealed-v0.Silent)) / samples
		t.Logf("%d%% loss on %s: Ben decoded %d frames of the %d Ada encoded (%.0f%%, %.1f fps), concealed %.2f%% of %d audio samples audibly (%.2f%% more while Ada was silent; %d packets), %d packets on his RTX stream",
			rtxLossPct, what, v1.Frames-v0.Frames, enc1-enc0, 100*share, float64(v1.Frames-v0.Frames)/window.Seconds(),
			concealed, v1.Samples-v0.Samples, 100*float64(v1.Silent-v0.Silent)/samples, v1.AudioPkts-v0.AudioPkts, v1.RTX-v0.RTX)
		if share < rtxMinFPSShare {
			t.Errorf("%d%% loss on %s: Ben decoded %.0f%% of the frames Ada encoded, want at least %.0f%%", rtxLossPct, what, 100*share, 100*rtxMinFPSShare)
		}
		if concealed >= rtxMaxConcealed {
			t.Errorf("%d%% loss on %s: Ben concealed %.2f%% of Ada's audio audibly, want under %.0f%%", rtxLossPct, what, concealed, rtxMaxConcealed)
		}
		return v0, v1, m0, m1
	}

	v0, v1, m0, m1 := leg("Ben's downlink", ben.host, netlab.Down)
	if v1.RTX <= v0.RTX || m1.retransmits <= m0.retransmits {
		t.Errorf("Ben's downlink lost packets for %v but received no retransmission on RTX (%d before, %d after; the server's retransmissions %.0f -> %.0f)",
			window, v0.RTX, v1.RTX, m0.retransmits, m1.retransmits)
	}
	// On the uplink leg what is asserted is what Ben keeps (in leg); the
	// server's NACKs to Ada and her RTX packets are logged only. The
	// NACKs were few in every run (0-5 in 15-25 s at 5% loss,
	// docs/lab/README.md), so their count cannot tell a repair path that
	// works from one that does not; a likely reason, not verified, is
	// that Chromium's bandwidth probes resend recent packets on RTX and
	// fill a hole before the server's NACK timer fires. Her RTX packets
	// include those probes, which come without any loss.
	leg("Ada's uplink", ada.host, netlab.Up)
}

// maxFramesEncoded is the frame count of p's busiest camera layer: every
// active layer encodes the camera's frames, so it is the publisher's
// frame count whichever layer a subscriber receives.
func maxFramesEncoded(ctx context.Context, t *testing.T, p *peer) int64 {
	t.Helper()
	m, err := cameraLayersSent(ctx, p)
	if err != nil {
		t.Fatalf("%s: outbound: %v", p.name, err)
	}
	n := int64(0)
	for _, o := range m {
		n = max(n, o.FramesEncoded)
	}
	return n
}

// videoStat is what a subscriber received of one participant so far:
// the camera's packets on RTX and frames decoded, the microphone's
// samples and those concealed, and its packets (fewer than 50 a second
// when the talker's DTX is silent; a page starved of CPU conceals with
// every packet there). The codec would not tell whether RED reached
// the subscriber: Chromium names the decoded one, audio/opus, in runs
// where RED repaired all of 5% loss.
type videoStat struct {
	RTX       int64 `json:"rtx"`
	Frames    int64 `json:"frames"`
	Samples   int64 `json:"samples"`
	Concealed int64 `json:"concealed"`
	AudioPkts int64 `json:"audioPkts"`
	// Silent is the part of Concealed played while the talker was
	// silent: with Opus DTX a silent talker sends a packet every 400 ms
	// and RED cannot carry one that far back, so each such packet lost
	// is up to 400 ms of comfort noise concealed, which no one hears
	// (2026-12-06 10:59: 5.86% concealed with 324 packets in 15 s, half
	// the usual count, at 5% loss; the client's quality report leaves
	// these out too).
	Silent int64 `json:"silent"`
}

// videoFrom is what p received of the camera and microphone of
// participant sid so far.
func videoFrom(ctx context.Context, t *testing.T, p *peer, sid string) videoStat {
	t.Helper()
	v, err := e2e.Eval[videoStat](ctx, p.b, fmt.Sprintf(`(async () => {
		const st = await window.parley.stats();
		const v = st.find((x) => x.participant === %q && x.kind === 'video' && x.source !== 'screen');
		const a = st.find((x) => x.participant === %q && x.kind === 'audio');
		return {rtx: v ? v.retransmittedPacketsReceived || 0 : 0, frames: v ? v.framesDecoded || 0 : 0,
			samples: a ? a.totalSamplesReceived || 0 : 0, concealed: a ? a.concealedSamples || 0 : 0,
			silent: a ? a.silentConcealedSamples || 0 : 0, audioPkts: a ? a.packetsReceived || 0 : 0};
	})()`, sid, sid))
	if err != nil {
		t.Fatalf("%s: read stats: %v", p.name, err)
	}
	return v
}

// rtxMetrics are the server's NACK and retransmission counters.
type rtxMetrics struct {
	nacksIn, nacksOut, retransmits, rtxOut, rtxIn, drops, cacheMiss, late float64
}

// serverMetrics scrapes the server's metrics; an error is logged and
// gives an empty set (every value reads 0, and assertions on the
// counters' growth fail).
func (c *call) serverMetrics() promtext.Series {
	c.t.Helper()
	m, err := promtext.Scrape(c.ctx, c.srv.URL+"/metrics")
	if err != nil {
		c.t.Logf("metrics: %v", err)
		return promtext.Series{}
	}
	return m
}

// metricValue is one series of m, 0 if absent.
func metricValue(m promtext.Series, series string) float64 {
	v, _ := m.Value(series)
	return v
}

// rtxMetrics reads the server's counters (zero if they cannot be read).
func (c *call) rtxMetrics() rtxMetrics {
	c.t.Helper()
	m := c.serverMetrics()
	v := func(series string) float64 { return metricValue(m, series) }
	return rtxMetrics{
		nacksIn: v(`parley_sfu_nacks_total{direction="in"}`), nacksOut: v(`parley_sfu_nacks_total{direction="out"}`),
		retransmits: v("parley_sfu_retransmits_total"), rtxOut: v(`parley_sfu_rtx_packets_total{direction="out"}`),
		rtxIn: v(`parley_sfu_rtx_packets_total{direction="in"}`), drops: m.Sum("parley_sfu_drops_total"),
		cacheMiss: v(`parley_sfu_drops_total{reason="cache_miss"}`), late: v(`parley_sfu_drops_total{reason="late"}`),
	}
}

// sub is the growth from o to m, for the log.
func (m rtxMetrics) sub(o rtxMetrics) string {
	return fmt.Sprintf("the server got %.0f NACKs from subscribers and sent %.0f to publishers, retransmitted %.0f, RTX out %.0f in %.0f, drops %.0f (cache miss %.0f, late %.0f)",
		m.nacksIn-o.nacksIn, m.nacksOut-o.nacksOut, m.retransmits-o.retransmits, m.rtxOut-o.rtxOut, m.rtxIn-o.rtxIn,
		m.drops-o.drops, m.cacheMiss-o.cacheMiss, m.late-o.late)
}

// logNACKAnswers logs the server's NACK answers by outcome, and the
// retransmissions and drops so far, under when (the server log has no
// per-packet lines for them).
func (c *call) logNACKAnswers(when string) {
	c.t.Helper()
	m := c.serverMetrics()
	a := func(o string) float64 { return metricValue(m, `parley_sfu_nack_answers_total{outcome="`+o+`"}`) }
	c.t.Logf("%s: NACK answers resent %.0f, too_recent %.0f, max_attempts %.0f, over_budget %.0f, left_layer %.0f; retransmits %.0f, drops %.0f",
		when, a("resent"), a("too_recent"), a("max_attempts"), a("over_budget"), a("left_layer"),
		metricValue(m, "parley_sfu_retransmits_total"), m.Sum("parley_sfu_drops_total"))
}
