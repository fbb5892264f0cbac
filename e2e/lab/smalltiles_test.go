package lab

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Scenario 6 of issue #10: six participants, every page with small
// tiles.
const (
	// smallDownMax is the most each subscriber's downlink may carry, on
	// average over smallWindow: five cameras at the low layer (about
	// 150 kbit/s each) and five microphones.
	smallDownMax = 1500 // kbit/s
	// smallWindow is how long the downlinks are measured: 30 s averages
	// out key frames (several per camera) and the browsers' bursts.
	smallWindow = 30 * time.Second
	// smallLowShare is the share of the window's per-second samples in
	// which a subscriber must decode all five cameras at the low layer
	// (a sample taken while the machine stalls a page may miss frames).
	smallLowShare = 0.9
)

// TestManySmallTiles: six participants whose pages show six small tiles
// each (a 640x540 window at a device scale of 1: about 206x116 px per
// tile). Every subscriber receives the low layer of the five others'
// cameras (the server forwards rid q to each, the browser decodes
// 320x180), and its downlink, counted on its link (every byte: media,
// RTCP, signaling, headers), averages under 1.5 Mbit/s.
func TestManySmallTiles(t *testing.T) {
	// 12 minutes: six pages join one after another, slowly on a busy
	// machine.
	ctx := testContext(t, 12*time.Minute)
	c := newCall(t, ctx, "lab-small-tiles")
	var peers []*peer
	// Every browser starts before anyone joins (see TestVisibility).
	for _, n := range []string{"Ada", "Bob", "Carol", "Dan", "Eve", "Fay"} {
		peers = append(peers, c.launchSmall(n))
	}
	for _, p := range peers {
		c.enter(p)
	}
	rec := c.record("scenario 6: six participants, small tiles")
	defer func() {
		rec.stop()
		writeTimeline(t, rec.timeline(), "small-tiles")
		c.keepServerLog("small-tiles")
	}()

	// Every subscriber gets the low layer of every camera, as the
	// server says.
	var layers map[string]map[string]string
	allLow := func() bool {
		l, err := c.cameraLayers(ctx)
		if err != nil {
			t.Log(err)
			return false
		}
		layers = l
		if len(l) != len(peers) {
			return false
		}
		for pub, subs := range l {
			if len(subs) != len(peers)-1 {
				return false
			}
			for sub, rid := range subs {
				if sub == pub || rid != "q" {
					return false
				}
			}
		}
		return true
	}
	if !poll(ctx, warmUpLimit, allLow) {
		for _, p := range peers {
			t.Logf("%s's page: %s", p.name, tilesSeen(ctx, p))
		}
		t.Fatalf("not every subscriber at the low layer of every camera within %v (publisher: subscriber: rid): %v", warmUpLimit, layers)
	}
	t.Logf("every subscriber at the low layer of every camera %.1f s after the recording started", rec.now())
	rec.note("every subscriber at the low layer")

	from := rec.now()
	rx0 := make([]int64, len(peers))
	for i, p := range peers {
		rx0[i] = linkRxBytes(t, p)
	}
	start := time.Now()
	time.Sleep(smallWindow)
	el := time.Since(start).Seconds()
	for i, p := range peers {
		kbps := float64(linkRxBytes(t, p)-rx0[i]) * 8 / 1000 / el
		ss := rec.samples(p.name, from, from+el)
		low, worst := 0, 0.0
		for _, s := range ss {
			if allAt(s, len(peers)-1, lowHeight) {
				low++
			}
			media := 0.0
			for _, tr := range s.Tracks {
				media += tr.Kbps
			}
			worst = max(worst, media)
		}
		t.Logf("%s: downlink %.0f kbit/s on the link over %.0f s (received media at most %.0f kbit/s in one second); "+
			"all five cameras decoding at %dp in %d of %d samples", p.name, kbps, el, worst, lowHeight, low, len(ss))
		rec.note(fmt.Sprintf("%s: downlink %.0f kbit/s over the window", p.name, kbps))
		if kbps >= smallDownMax {
			t.Errorf("%s's downlink carried %.0f kbit/s over %.0f s, want under %d", p.name, kbps, el, smallDownMax)
		}
		if float64(low) < smallLowShare*float64(len(ss)) {
			t.Errorf("%s decoded all five cameras at %dp in only %d of %d samples", p.name, lowHeight, low, len(ss))
		}
	}
	if !allLow() {
		t.Errorf("at the end of the window the server forwards (publisher: subscriber: rid): %v", layers)
	}
}

// linkRxBytes is what p's host has received on its link so far, every
// byte that came down its veth (ip -s link, inside its namespace).
func linkRxBytes(t *testing.T, p *peer) int64 {
	t.Helper()
	cmd := p.host.Command("ip", "-j", "-s", "link", "show", "dev", "eth0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: ip -s link: %v", p.name, err)
	}
	var links []struct {
		Stats64 struct {
			Rx struct {
				Bytes int64 `json:"bytes"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("%s: ip -s link: %v: %s", p.name, err, out)
	}
	return links[0].Stats64.Rx.Bytes
}
