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

// rtxLossWindow is how long each leg drops packets.
const rtxLossWindow = 15 * time.Second

// TestVideoLossRTX: with RTX negotiated on both connections (issue #10),
// 5% loss on a subscriber's downlink is repaired on the subscriber's RTX
// stream (Chromium's inbound-rtp retransmittedPacketsReceived grows),
// and 5% loss on the publisher's uplink is repaired on the publisher's
// RTX stream and reaches the subscriber as media, repaired already (the
// subscriber's retransmitted count stays put while its video decodes).
func TestVideoLossRTX(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	c := newCall(t, ctx, "lab-rtx")
	ada, ben := c.join("Ada"), c.join("Ben")
	sid := c.sidOf(ben, "Ada")
	if !poll(ctx, warmUpLimit, func() bool { return videoFrom(ctx, t, ben, sid).frames > 0 }) {
		t.Fatalf("Ben does not decode Ada's camera within %v", warmUpLimit)
	}

	start := videoFrom(ctx, t, ben, sid)
	time.Sleep(5 * time.Second)
	before := videoFrom(ctx, t, ben, sid)
	t.Logf("no loss, 5 s: Ben decoded %d frames of Ada's camera", before.frames-start.frames)
	c.logRTXMetrics("before loss")
	if err := ben.host.SetLoss(netlab.Down, 5); err != nil {
		t.Fatal(err)
	}
	time.Sleep(rtxLossWindow)
	if err := ben.host.SetLoss(netlab.Down, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the last repairs
	down := videoFrom(ctx, t, ben, sid)
	t.Logf("5%% loss on Ben's downlink for %v: %d packets retransmitted on RTX, %d frames decoded",
		rtxLossWindow, down.rtx-before.rtx, down.frames-before.frames)
	c.logRTXMetrics("after Ben's downlink loss")
	if down.rtx <= before.rtx {
		t.Errorf("Ben's downlink lost packets for %v but received no retransmission on RTX (%d before, %d after)",
			rtxLossWindow, before.rtx, down.rtx)
	}

	if err := ada.host.SetLoss(netlab.Up, 5); err != nil {
		t.Fatal(err)
	}
	time.Sleep(rtxLossWindow)
	if err := ada.host.SetLoss(netlab.Up, 0); err != nil {
		t.Fatal(err)
	}
	up := videoFrom(ctx, t, ben, sid)
	c.logRTXMetrics("after Ada's uplink loss")
	t.Logf("5%% loss on Ada's uplink for %v: Ben decoded %d frames, %d packets on his RTX stream",
		rtxLossWindow, up.frames-down.frames, up.rtx-down.rtx)
	// 15 fps of fake camera: at least half of them decoded.
	if want := int64(rtxLossWindow.Seconds() * 15 / 2); up.frames-down.frames < want {
		t.Errorf("with 5%% loss on Ada's uplink Ben decoded %d frames in %v, want at least %d",
			up.frames-down.frames, rtxLossWindow, want)
	}
}

type videoStat struct{ rtx, frames int64 }

// videoFrom is what p received of the camera of participant sid so far.
func videoFrom(ctx context.Context, t *testing.T, p *peer, sid string) videoStat {
	t.Helper()
	v, err := e2e.Eval[[2]int64](ctx, p.b, fmt.Sprintf(`(async () => {
		const s = (await window.parley.stats()).find((x) => x.participant === %q && x.kind === 'video' && x.source !== 'screen');
		return s ? [s.retransmittedPacketsReceived || 0, s.framesDecoded || 0] : [0, 0];
	})()`, sid))
	if err != nil {
		t.Fatalf("%s: read stats: %v", p.name, err)
	}
	return videoStat{rtx: v[0], frames: v[1]}
}

// logRTXMetrics logs the server's NACK and retransmission counters.
func (c *call) logRTXMetrics(when string) {
	c.t.Helper()
	m, err := promtext.Scrape(c.ctx, c.srv.URL+"/metrics")
	if err != nil {
		c.t.Logf("metrics %s: %v", when, err)
		return
	}
	v := func(series string) float64 {
		x, _ := m.Value(series)
		return x
	}
	c.t.Logf("metrics %s: NACKs in %.0f out %.0f, retransmits %.0f, RTX out %.0f in %.0f, drops %.0f (cache miss %.0f, late %.0f)", when,
		v(`parley_sfu_nacks_total{direction="in"}`), v(`parley_sfu_nacks_total{direction="out"}`),
		v("parley_sfu_retransmits_total"), v(`parley_sfu_rtx_packets_total{direction="out"}`),
		v(`parley_sfu_rtx_packets_total{direction="in"}`), m.Sum("parley_sfu_drops_total"),
		v(`parley_sfu_drops_total{reason="cache_miss"}`), v(`parley_sfu_drops_total{reason="late"}`))
}
