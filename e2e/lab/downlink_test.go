package lab

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/netlab"
)

// Scenario 1 of issue #10 and its acceptance figures.
const (
	downCap       = 300_000          // Carol's downlink cap, bit/s
	toLowLayer    = 5 * time.Second  // the cap to every camera at the low layer
	capHold       = 60 * time.Second // watched with the cap on
	maxFreeze     = 1.0              // seconds of freezes over capHold, all cameras
	maxConcealed  = 2.0              // % of audio samples concealed over capHold
	backToFull    = 15 * time.Second // the cap lifted to 1280x720 again
	fullHeight    = 720
	lowHeight     = 180
	warmUpLimit   = 60 * time.Second
	fullShareGood = 0.95 // of the others' samples at 1280x720 while Carol is capped
)

// TestDownlinkCap: three participants; Carol's downlink is capped at
// 300 kbit/s. Within 5 s she receives the low layer of both cameras,
// which keep decoding with at most 1 s of freezes and under 2% audio
// concealment over the next 60 s, while Ada and Bob keep receiving
// 1280x720; lifted, Carol is back at 1280x720 within 15 s.
func TestDownlinkCap(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	c := newCall(t, ctx, "lab-downlink")
	ada, bob, carol := c.join("Ada"), c.join("Bob"), c.join("Carol")
	rec := c.record("scenario 1: downlink cap 300 kbit/s on carol")
	defer func() {
		rec.stop()
		writeTimeline(t, rec.timeline(), "downlink-cap")
		c.keepServerLog("downlink-cap")
	}()
	latest := func(p *peer) netlab.Sample { return rec.latest(p.name) }
	if !poll(ctx, warmUpLimit, func() bool {
		return allAt(latest(ada), 2, fullHeight) && allAt(latest(bob), 2, fullHeight) && allAt(latest(carol), 2, fullHeight)
	}) {
		// Measured on: the capped phase still says how Carol fares.
		t.Errorf("not every participant decodes both cameras at %dp within %v: Ada %+v, Bob %+v, Carol %+v",
			fullHeight, warmUpLimit, cameras(latest(ada)), cameras(latest(bob)), cameras(latest(carol)))
	}
	time.Sleep(5 * time.Second) // a little uncapped history for the plot

	c.logNACKAnswers("before the cap")
	capAt := rec.now()
	c.setDownCap(carol, downCap, rec)
	var lowAt float64
	if poll(ctx, 3*toLowLayer, func() bool { return allAtLowSent(rec, latest(carol), 2, lowHeight) }) {
		lowAt = rec.now() - capAt
	}
	switch {
	case lowAt == 0:
		t.Errorf("capped at %d kbit/s, Carol did not receive both cameras at %dp within %v: %+v",
			downCap/1000, lowHeight, 3*toLowLayer, cameras(latest(carol)))
	case lowAt > toLowLayer.Seconds()+1: // +1: the sampling period
		t.Errorf("capped, Carol received both cameras at %dp after %.1f s, want within %v", lowHeight, lowAt, toLowLayer)
	}
	if lowAt > 0 {
		t.Logf("capped at %d kbit/s: Carol at the low layer after %.1f s", downCap/1000, lowAt)
	}
	c.logNACKAnswers(fmt.Sprintf("%.1f s into the cap", rec.now()-capAt))

	from := capAt + toLowLayer.Seconds()
	time.Sleep(time.Until(rec.start.Add(time.Duration((from + capHold.Seconds() + 1) * float64(time.Second)))))
	c.logNACKAnswers("at the end of the cap")
	to := from + capHold.Seconds()
	held := rec.samples(carol.name, from, to)
	if len(held) < int(capHold.Seconds())/2 {
		t.Fatalf("only %d samples of Carol over %v", len(held), capHold)
	}
	freeze, concealed, decoding := windowFigures(held)
	t.Logf("Carol over %v capped: %.2f s of freezes, %.2f%% audio concealed, %d of %d samples decoding both cameras",
		capHold, freeze, concealed, decoding, len(held))
	if freeze > maxFreeze {
		t.Errorf("Carol capped: %.2f s of video freezes over %v, want at most %.1f s", freeze, capHold, maxFreeze)
	}
	if concealed > maxConcealed {
		t.Errorf("Carol capped: %.2f%% of audio concealed, want under %.0f%%", concealed, maxConcealed)
	}
	if decoding < len(held)*9/10 {
		t.Errorf("Carol capped: both cameras decoding in %d of %d samples", decoding, len(held))
	}
	for _, p := range []*peer{ada, bob} {
		ss := rec.samples(p.name, from, to)
		full, fullSent := 0, 0
		for _, s := range ss {
			if allAt(s, 2, fullHeight) {
				full++
			}
			if atTopSent(rec, s, fullHeight) {
				fullSent++
			}
		}
		t.Logf("%s while Carol is capped: %d of %d samples with both cameras at %dp; %d with every camera at %dp or its publisher not sending %q",
			p.name, full, len(ss), fullHeight, fullSent, fullHeight, topRid)
		if float64(fullSent) < fullShareGood*float64(len(ss)) {
			t.Errorf("%s while Carol is capped: both cameras at %dp (or not sent at it) in only %d of %d samples", p.name, fullHeight, fullSent, len(ss))
		}
	}

	liftAt := rec.now()
	c.setDownCap(carol, 0, rec)
	var fullAt float64
	// Back at the top layer as its publisher encodes it: a Chrome short
	// of CPU scales its capture down, and its top layer is then 960x540
	// (2026-12-06 20:32: Bob's, from before the lift to the end; Carol
	// received it and Ada's 1280x720 13 s after the lift, and the check
	// for 720p waited 45 s for what Bob no longer sent).
	if poll(ctx, 3*backToFull, func() bool { return camerasAsSent(rec, latest(carol), 2, fullHeight, topRid, false) }) {
		fullAt = rec.now() - liftAt
	}
	switch {
	case fullAt == 0:
		t.Errorf("cap lifted: Carol not back at %dp (or the top layer as sent) within %v: %+v", fullHeight, 3*backToFull, cameras(latest(carol)))
	case fullAt > backToFull.Seconds()+1:
		t.Errorf("cap lifted: Carol back at %dp after %.1f s, want within %v", fullHeight, fullAt, backToFull)
	default:
		t.Logf("cap lifted: Carol back at %dp after %.1f s", fullHeight, fullAt)
	}
	time.Sleep(3 * time.Second)
}

// windowFigures sums, over samples of one host: the growth of the
// cameras' freeze time (s), the audio concealed in the window (%), and
// how many samples show both cameras decoding.
func windowFigures(ss []netlab.Sample) (freeze, concealedPct float64, decoding int) {
	first, last := ss[0], ss[len(ss)-1]
	type audio struct{ samples, concealed int64 }
	freezeAt := func(s netlab.Sample) map[string]float64 {
		m := map[string]float64{}
		for _, t := range cameras(s) {
			m[t.From] = t.FreezeSeconds
		}
		return m
	}
	audioAt := func(s netlab.Sample) map[string]audio {
		m := map[string]audio{}
		for _, t := range s.Tracks {
			if t.Kind == "audio" {
				m[t.From] = audio{t.AudioSamples, t.ConcealedSamples}
			}
		}
		return m
	}
	f0, f1 := freezeAt(first), freezeAt(last)
	for k, v := range f1 {
		freeze += v - f0[k]
	}
	a0, a1 := audioAt(first), audioAt(last)
	var samples, concealed int64
	for k, v := range a1 {
		samples += v.samples - a0[k].samples
		concealed += v.concealed - a0[k].concealed
	}
	if samples > 0 {
		concealedPct = 100 * float64(concealed) / float64(samples)
	}
	for _, s := range ss {
		cams := cameras(s)
		ok := len(cams) == 2
		for _, t := range cams {
			ok = ok && t.FPS > 0
		}
		if ok {
			decoding++
		}
	}
	return freeze, concealedPct, decoding
}

// topSentGrace: a publisher's top layer that starts again reaches its
// subscribers after a key frame and a second of measurement (the SFU
// takes a layer as arriving once it has its bitrate), so a sample that
// soon after a publisher's top layer came back still counts as not sent.
const topSentGrace = 2.0 // seconds

// atTopSent reports whether every camera in s (a subscriber's sample)
// decodes at height h, or its publisher's page did not encode its top
// layer (rid topRid) in any of its own samples of the topSentGrace
// seconds before. The issue's "the other subscribers keep receiving
// 1280x720" is the SFU's to keep only while the publisher sends it: a
// browser lowers its own layers when its send estimate or its CPU
// falls, which on the lab's two shared cores it does for seconds at a
// time (at 13:02 Bob's Chrome, on a link with no cap, stopped its
// 1280x720 layer twice for 3-4 s on its own estimate). A camera at the
// height its publisher encodes the top layer at in the same window
// counts too: Chrome scales its capture down when short of CPU (at
// 2026-12-06 10:56 Bob's sent 960x540 as `f` for the whole capped
// minute), and then that is the top layer there is.
func atTopSent(rec *recorder, s netlab.Sample, h int) bool {
	return camerasAsSent(rec, s, 0, h, topRid, true)
}

// allAtLowSent is allAt(s, want, h) where a camera may also decode at
// the height its publisher encodes its low layer at in the last
// topSentGrace seconds: a Chrome short of CPU scales its capture down,
// and its 320x180 layer becomes 240x135 (2026-12-06 12:24: Bob's, for
// the whole capped minute).
func allAtLowSent(rec *recorder, s netlab.Sample, want, h int) bool {
	return camerasAsSent(rec, s, want, h, "q", false)
}

// camerasAsSent reports whether s (a subscriber's sample) shows want
// cameras (0: any number but none), each decoding at height h or at the
// height its publisher's page encoded rid at in its samples of the
// topSentGrace seconds before; with unsentCounts, also a camera whose
// publisher encoded no rid in those samples.
func camerasAsSent(rec *recorder, s netlab.Sample, want, h int, rid string, unsentCounts bool) bool {
	cams := cameras(s)
	if len(cams) == 0 || want > 0 && len(cams) != want {
		return false
	}
	for _, c := range cams {
		if c.FPS <= 0 || !atHeightAsSent(rec, s.T, c, h, rid, unsentCounts) {
			return false
		}
	}
	return true
}

// atHeightAsSent reports whether camera c, in a subscriber's sample at
// time at, shows height h or the height its publisher's page encoded
// rid at in its samples of the topSentGrace seconds before (its newest
// one if none); with unsentCounts, also whether that publisher encoded
// no rid then.
func atHeightAsSent(rec *recorder, at float64, c netlab.Track, h int, rid string, unsentCounts bool) bool {
	if c.Height == h {
		return true
	}
	pub := rec.samples(c.From, at-topSentGrace, at+0.001)
	if len(pub) == 0 {
		// A page starved of CPU samples itself less often than every
		// topSentGrace seconds: its newest sample then.
		if before := rec.samples(c.From, 0, at+0.001); len(before) > 0 {
			pub = before[len(before)-1:]
		}
	}
	if slices.ContainsFunc(pub, func(ps netlab.Sample) bool { return sentHeight(ps, rid) == c.Height }) {
		return true
	}
	return unsentCounts && len(pub) > 0 && !slices.ContainsFunc(pub, func(ps netlab.Sample) bool { return sendsRid(ps, rid) })
}

// sentHeight is the height a page's sample shows it encoding rid at
// ("f:540(cpu)": 540), 0 if it does not encode rid.
func sentHeight(s netlab.Sample, rid string) int {
	for _, e := range s.Sending {
		rest, ok := strings.CutPrefix(e, rid+":")
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '('); i >= 0 {
			rest = rest[:i]
		}
		h, _ := strconv.Atoi(rest)
		return h
	}
	return 0
}

// sendsRid reports whether a page's sample shows it encoding rid.
func sendsRid(s netlab.Sample, rid string) bool {
	for _, e := range s.Sending {
		if strings.HasPrefix(e, rid+":") {
			return true
		}
	}
	return false
}
