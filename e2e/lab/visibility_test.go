package lab

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/e2e"
	"github.com/parleyhq/parley/internal/netlab"
)

// Scenario 5 of issue #10: one subscriber hides four of its five remote
// tiles.
const (
	// visReport bounds a change of Ada's tiles to her page's report of
	// it reaching the server (the admin API's view of her receivers).
	// The page reports within its 250 ms throttle once its observers
	// run, and they run with the page's rendering: 0.5 s here on a quiet
	// machine, but on CI's loaded one (2026-12-06, a run four times
	// slower than here) the server still forwarded every camera 5 s
	// after the hiding, with nothing to tell a late report from a late
	// server. The report's delay is the page's, and is logged.
	visReport = 30 * time.Second
	// visForward bounds the hiding, from the server having the report,
	// to it forwarding nothing of the hidden cameras to Ada: it acts on
	// a report at once.
	visForward = 5 * time.Second
	// visPause bounds the hiding to the hidden publishers' unneeded
	// layers being paused: dynacast lowers a track's layers only after
	// the lower need has held for 3 s, then the publisher's page applies
	// active_layers with setParameters.
	visPause = 15 * time.Second
	// visWindow is how long Ada's counters of the hidden cameras are
	// watched for packets: 20 s is about 100 frames of each camera, so a
	// leak of even one layer's key frames would show.
	visWindow = 20 * time.Second
	// visShow bounds showing the tiles again, from the server having
	// the report, to Ada receiving every camera: the low layer still
	// arrives at the server, it needs a key frame.
	visShow = 5 * time.Second
	// visFPSArg is the scenario's fake camera rate.
	visFPSArg = "--use-fake-device-for-media-stream=fps=5"
)

// TestVisibility: six participants. Ada's page is large (her tiles
// want the middle layer); the others' pages show small tiles, which
// only need the low layer. Ada hides the
// tiles of Carol, Dan, Eve and Fay, keeping Bob's. Then the server
// forwards her nothing of the hidden cameras (its per-subscriber layer
// is none, and her browser's packet counters of them stand still over
// 20 s) while Bob's keeps arriving; and as nobody else needs the hidden
// cameras' upper layers, their publishers are told to pause them
// (active_layers) and send only the low one. Shown again, every camera
// reaches her again within 5 s.
func TestVisibility(t *testing.T) {
	// 12 minutes: six pages join one after another, slowly on a busy
	// machine.
	ctx := testContext(t, 12*time.Minute)
	c := newCall(t, ctx, "lab-visibility")
	// Every browser starts before anyone joins, and the small pages join
	// first: they need only each other's low layers, which dynacast soon
	// has every browser send alone, so the two cores are not busy
	// encoding and decoding 1280x720 while the next pages load (at load
	// averages of 40-60 from other work a sixth Chromium did not start
	// or load the page in time otherwise).
	// The cameras run at 5 fps, not the lab's 15: what is measured is
	// which packets flow, not their rate, and six browsers encoding and
	// decoding at 15 fps kept two shared cores too busy to join them.
	bob := c.launch("Bob", smallWindowArg, smallScaleArg, visFPSArg)
	var hidden []*peer
	for _, n := range []string{"Carol", "Dan", "Eve", "Fay"} {
		hidden = append(hidden, c.launch(n, smallWindowArg, smallScaleArg, visFPSArg))
	}
	// Ada's window is 1280x720 at a device scale of 1: her tiles (about
	// 420x236 px) want the middle layer, 640x360, more than the others
	// need but cheaper to decode five times than 1280x720.
	ada := c.launch("Ada", smallScaleArg, visFPSArg)
	for _, p := range append([]*peer{bob}, hidden...) {
		c.enter(p)
	}
	c.enter(ada)
	hiddenNames := make([]string, len(hidden))
	for i, p := range hidden {
		hiddenNames[i] = p.name
	}
	rec := c.record("scenario 5: Ada hides 4 of 5 tiles")
	defer func() {
		rec.stop()
		writeTimeline(t, rec.timeline(), "visibility")
		c.keepServerLog("visibility")
	}()
	latest := func(p *peer) netlab.Sample { return rec.latest(p.name) }
	decodingAll := func(p *peer, n int) bool {
		cams := cameras(latest(p))
		if len(cams) != n {
			return false
		}
		for _, tr := range cams {
			if tr.FPS <= 0 {
				return false
			}
		}
		return true
	}
	// Warm-up: the server forwards Ada a layer of every camera and her
	// page receives them. (Decoding is not required here: on a starved
	// machine the pages decode a frame a second or less, which says
	// nothing of what the server forwards.)
	var warm map[string]map[string]string
	if !poll(ctx, warmUpLimit, func() bool {
		l, err := c.cameraLayers(ctx)
		if err != nil || len(cameras(latest(ada))) != 5 {
			return false
		}
		warm = l
		for _, p := range append([]*peer{bob}, hidden...) {
			if l[p.name][ada.name] == "" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the server does not forward Ada every camera within %v: %v; her page: %+v", warmUpLimit, warm, cameras(latest(ada)))
	}
	time.Sleep(3 * time.Second) // a little history with every tile shown

	hideAt := rec.now()
	if n, err := setTilesShown(ctx, ada, hiddenNames, false); err != nil || n != len(hiddenNames) {
		t.Fatalf("hiding %v in Ada's page: %d tiles, %v", hiddenNames, n, err)
	}
	rec.note(fmt.Sprintf("Ada hides the tiles of %v", hiddenNames))
	reportedAt := awaitReport(t, ctx, c, rec, ada.name, hiddenNames, false)
	t.Logf("hidden: Ada's report reached the server %.1f s after the hiding", reportedAt-hideAt)

	// The server: Ada's receivers of the hidden cameras at no layer,
	// of Bob's at one.
	var layers map[string]map[string]string
	forwardsOnlyBob := func() bool {
		l, err := c.cameraLayers(ctx)
		if err != nil {
			t.Log(err)
			return false
		}
		layers = l
		if l[bob.name][ada.name] == "" {
			return false
		}
		for _, p := range hidden {
			if got, ok := l[p.name][ada.name]; !ok || got != "" {
				return false
			}
		}
		return true
	}
	if !poll(ctx, visForward, forwardsOnlyBob) {
		t.Fatalf("%v after Ada's report: the server forwards Ada these camera layers (publisher: subscriber: rid): %v",
			visForward, layers)
	}
	t.Logf("hidden: the server forwards Ada only Bob's camera (layer %q) %.1f s after the hiding (%.1f s after her report)",
		layers[bob.name][ada.name], rec.now()-hideAt, rec.now()-reportedAt)

	// Dynacast: the hidden cameras send only their low layer.
	rids := map[string][]string{}
	paused := func() bool {
		ok := true
		for _, p := range hidden {
			r, err := activeRids(ctx, p)
			if err != nil {
				return false
			}
			rids[p.name] = r
			ok = ok && slices.Equal(r, []string{"q"})
		}
		return ok
	}
	if !poll(ctx, visPause, paused) {
		t.Errorf("%v after hiding, the hidden publishers send these camera layers: %v, want only q", visPause, rids)
	} else {
		t.Logf("hidden: Carol, Dan, Eve and Fay send only their low layer after %.1f s", rec.now()-hideAt)
	}
	rec.note("the hidden cameras' upper layers paused")

	// Ada's own counters over visWindow: nothing of the hidden cameras.
	type inbound struct {
		Name            string `json:"name"`
		Kind            string `json:"kind"`
		Source          string `json:"source"`
		PacketsReceived int64  `json:"packetsReceived"`
		FramesDecoded   int64  `json:"framesDecoded"`
	}
	read := func() map[string]inbound {
		st, err := e2e.Eval[[]inbound](ctx, ada.b, `window.parley.stats()`)
		if err != nil {
			t.Fatalf("Ada's stats: %v", err)
		}
		m := map[string]inbound{}
		for _, s := range st {
			if s.Kind == "video" && s.Source == "camera" {
				m[s.Name] = s
			}
		}
		return m
	}
	before, from := read(), rec.now()
	time.Sleep(visWindow)
	after := read()
	for _, p := range hidden {
		got := after[p.name].PacketsReceived - before[p.name].PacketsReceived
		t.Logf("Ada from %s (hidden) over %v: %d packets", p.name, visWindow, got)
		if got != 0 {
			t.Errorf("Ada received %d packets of %s's hidden camera over %v, want none", got, p.name, visWindow)
		}
	}
	bobPackets := after[bob.name].PacketsReceived - before[bob.name].PacketsReceived
	bobFrames := after[bob.name].FramesDecoded - before[bob.name].FramesDecoded
	t.Logf("Ada from Bob (shown) over %v: %d packets, %d frames decoded", visWindow, bobPackets, bobFrames)
	if bobPackets == 0 || bobFrames == 0 {
		t.Errorf("Ada received %d packets and decoded %d frames of Bob's shown camera over %v", bobPackets, bobFrames, visWindow)
	}
	if !forwardsOnlyBob() {
		t.Errorf("at the end of the window the server forwards Ada: %v", layers)
	}
	var kbps []float64
	for _, s := range rec.samples(ada.name, from, from+visWindow.Seconds()) {
		kbps = append(kbps, videoKbps(s))
	}
	t.Logf("Ada's received video over the window, kbit/s per second: %.0f", kbps)
	// Bob is shown larger to Ada: whether his upper layers stay on is
	// up to her tile's size and her bandwidth estimate (not part of the
	// scenario's figures), so it is logged with both.
	bobRids, err := activeRids(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	tile, _ := e2e.Eval[string](ctx, ada.b, `(() => {
		for (const tile of document.querySelectorAll('[data-testid=tile]')) {
			const name = tile.querySelector('[data-testid=tile-name]');
			const video = tile.querySelector('[data-testid=tile-video]');
			if (name && video && name.textContent.trim() === '`+bob.name+`') {
				const r = video.getBoundingClientRect(), d = window.devicePixelRatio || 1;
				return Math.round(r.width * d) + 'x' + Math.round(r.height * d);
			}
		}
		return '';
	})()`)
	t.Logf("Bob sends %v; Ada shows him at %s device px and receives his layer %q (her estimate: %d bit/s)",
		bobRids, tile, layers[bob.name][ada.name], c.estimate(ctx, ada.name))
	for _, p := range hidden {
		r, err := activeRids(ctx, p)
		if err == nil && !slices.Equal(r, []string{"q"}) {
			t.Errorf("at the end of the window %s sends %v, want only q", p.name, r)
		}
	}

	showAt := rec.now()
	if n, err := setTilesShown(ctx, ada, hiddenNames, true); err != nil || n != len(hiddenNames) {
		t.Fatalf("showing %v in Ada's page again: %d tiles, %v", hiddenNames, n, err)
	}
	rec.note("Ada shows every tile again")
	shown := read()
	reportedAt = awaitReport(t, ctx, c, rec, ada.name, hiddenNames, true)
	t.Logf("shown again: Ada's report reached the server %.1f s after the showing", reportedAt-showAt)
	// Shown again: the server forwards every camera again and Ada's
	// page receives packets of each (decoding is logged: it is the
	// machine's as much as the server's).
	if poll(ctx, visShow, func() bool {
		l, err := c.cameraLayers(ctx)
		if err != nil {
			return false
		}
		now := read()
		for _, p := range hidden {
			if l[p.name][ada.name] == "" || now[p.name].PacketsReceived == shown[p.name].PacketsReceived {
				return false
			}
		}
		return true
	}) {
		t.Logf("shown again: Ada receives the five cameras after %.1f s (%.1f s after her report)", rec.now()-showAt, rec.now()-reportedAt)
	} else {
		t.Errorf("shown again: Ada does not receive the five cameras within %v of her report: %v", visShow, read())
	}
	if poll(ctx, visShow+time.Second, func() bool { return latest(ada).T > showAt+0.5 && decodingAll(ada, 5) }) {
		t.Logf("shown again: Ada decodes the five cameras after %.1f s", rec.now()-showAt)
	} else {
		t.Logf("shown again: Ada does not decode all five cameras within %v: %+v", visShow, cameras(latest(ada)))
	}
	time.Sleep(3 * time.Second)
}

// videoKbps is a sample's received video bitrate, all cameras.
func videoKbps(s netlab.Sample) float64 {
	sum := 0.0
	for _, tr := range s.Tracks {
		if tr.Kind == "video" {
			sum += tr.Kbps
		}
	}
	return sum
}

// awaitReport waits, up to visReport, for the server to hold sub's
// report of the named publishers' cameras as visible (or hidden), and
// returns when it saw it on the recorder's clock.
func awaitReport(t *testing.T, ctx context.Context, c *call, rec *recorder, sub string, pubs []string, visible bool) float64 {
	t.Helper()
	var views map[string]bool
	if !poll(ctx, visReport, func() bool {
		v, err := c.viewsOf(ctx, sub)
		if err != nil {
			return false
		}
		views = v
		for _, p := range pubs {
			if seen, ok := v[p]; !ok || seen != visible {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("%s's page has not reported %v as visible=%v within %v; the server holds (publisher: visible) %v",
			sub, pubs, visible, visReport, views)
	}
	return rec.now()
}
