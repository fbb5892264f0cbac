package simulcast

import (
	"testing"
	"testing/synctest"
	"time"
)

// camL1T3 is a camera whose layers carry three temporal layers at
// libwebrtc's split (40%, 60%, 100% of the bitrate), the lowest at q
// bps.
func camL1T3(id string, q int) TrackInfo {
	t := cam(id, 640, 360)
	t.Layers = []LayerInfo{{Width: 320, Height: 180, Bitrate: q}, {Width: 640, Height: 360, Bitrate: 500_000}, {Width: 1280, Height: 720, Bitrate: 1_500_000}}
	for i := range t.Layers {
		b := t.Layers[i].Bitrate
		t.Layers[i].Temporal = [4]int{b * 4 / 10, b * 6 / 10, b, b}
	}
	return t
}

// Lab scenario 1: a subscriber capped at 300 kbit/s, two cameras whose
// lowest layers take about 150 kbit/s each, two microphones. The
// lowest layers do not fit: the lower-priority camera loses frames
// (temporal layers), the speaker's keeps them, and neither is paused.
func TestSelectLowersFrameRateWhenLowestLayersDoNotFit(t *testing.T) {
	s := NewSelector(SelectorConfig{})
	tracks := []TrackInfo{audio("a1"), audio("a2"), camL1T3("other", 150_000), speaker(camL1T3("speaker", 150_000))}
	ds, tot := s.Select(time.Unix(1000, 0), 300_000, tracks, nil)
	other, spk := ds[2], ds[3]
	if other.Layer != 0 || spk.Layer != 0 {
		t.Fatalf("layers %v, want the lowest for both cameras", layers(ds))
	}
	if spk.Temporal != AllTemporal {
		t.Errorf("speaker's camera at temporal layer %d, want all", spk.Temporal)
	}
	if other.Temporal >= AllTemporal || other.Temporal == 0 && tot.Used > 300_000 {
		t.Errorf("other camera at temporal layer %d (used %d of 300000)", other.Temporal, tot.Used)
	}
	// 80k audio + 150k + the other at TID 0 (60k) = 290k: it fits.
	if tot.Used > 300_000 || other.Temporal != 0 || other.Bitrate != 60_000 {
		t.Errorf("used %d, other camera at TID %d, %d bps", tot.Used, other.Temporal, other.Bitrate)
	}
}

// With room to spare, or without temporal layers, nothing changes.
func TestSelectKeepsFrameRateWhenItFits(t *testing.T) {
	s := NewSelector(SelectorConfig{})
	tracks := []TrackInfo{audio("a1"), camL1T3("c1", 150_000), camL1T3("c2", 150_000)}
	ds, _ := s.Select(time.Unix(1000, 0), 400_000, tracks, nil)
	for _, d := range ds {
		if d.Temporal != AllTemporal {
			t.Errorf("decisions %+v: frame rate lowered with room to spare", ds)
		}
	}
	noTL := []TrackInfo{audio("a1"), cam("c1", 640, 360), cam("c2", 640, 360)}
	ds, _ = NewSelector(SelectorConfig{}).Select(time.Unix(1000, 0), 100_000, noTL, nil)
	for _, d := range ds {
		if d.Temporal != AllTemporal || d.Layer != 0 && d.Wanted != 0 {
			t.Errorf("decisions %+v for layers without temporal layers", ds)
		}
	}
}

// The frame rate goes back up once the estimate covers it with the
// margin for the hold time, not at the first estimate that does.
func TestSelectFrameRateHysteresis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSelector(SelectorConfig{})
		tracks := []TrackInfo{audio("a1"), camL1T3("c1", 150_000), camL1T3("c2", 150_000)}
		var tids []uint8
		var ds []Decision
		for i := range 100 { // 100 ms a round
			est := 400_000
			if i >= 20 && i < 50 {
				est = 300_000
			}
			ds, _ = s.Select(time.Now(), est, tracks, ds)
			tids = append(tids, ds[2].Temporal)
			time.Sleep(100 * time.Millisecond)
		}
		// All layers, then lowered at once at 2 s, back 2 s after the
		// estimate recovered at 5 s.
		if tids[19] != AllTemporal || tids[20] == AllTemporal || tids[49] == AllTemporal ||
			tids[50] == AllTemporal || tids[68] == AllTemporal || tids[71] != AllTemporal {
			t.Fatalf("temporal layers over time: %v", tids)
		}
		if ds[0].Layer != 0 || ds[1].Temporal != AllTemporal {
			t.Fatalf("decisions %+v", ds)
		}
	})
}

// The top temporal layer is the whole layer: a layer whose bitrate
// counts more than its frames (padding, retransmissions) is not "lowered"
// to its top temporal layer, which would leave out nothing and only
// stop the other tracks from being raised.
func TestSelectTopTemporalIsAll(t *testing.T) {
	padded := func(id string) TrackInfo {
		t := camL1T3(id, 150_000)
		t.Layers[0].Bitrate = 170_000
		return t
	}
	tracks := []TrackInfo{audio("a1"), audio("a2"), padded("c1"), padded("c2")}
	// 80k + 2 x 170k = 420k: 20k short, which dropping TID 2 of one
	// camera covers.
	ds, tot := NewSelector(SelectorConfig{}).Select(time.Unix(1000, 0), 400_000, tracks, nil)
	if ds[2].Temporal != AllTemporal || ds[3].Temporal != 1 || tot.Used > 400_000 {
		t.Errorf("temporal layers %d, %d (used %d), want all and 1", ds[2].Temporal, ds[3].Temporal, tot.Used)
	}
}

// capLifted runs a subscriber of two L1T3 cameras (1280x720 tiles) and
// two microphones at a 200 kbit/s estimate for 5 s (both frame rates
// lowered to the base layer), then at est, one round per 100 ms for 10 s; it returns the
// decisions for the cameras at each round after the lift.
func capLifted(t *testing.T, cfg SelectorConfig, est int) [][2]Decision {
	t.Helper()
	s := NewSelector(cfg)
	tracks := []TrackInfo{audio("a1"), audio("a2"), camL1T3("c1", 150_000), camL1T3("c2", 150_000)}
	for i := range tracks[2:] {
		tracks[2+i].TileWidth, tracks[2+i].TileHeight = 1280, 720
	}
	var ds []Decision
	for range 50 {
		ds, _ = s.Select(time.Now(), 200_000, tracks, ds)
		time.Sleep(100 * time.Millisecond)
	}
	if ds[2].Temporal != 0 || ds[3].Temporal != 0 {
		t.Fatalf("capped: decisions %+v, want both cameras at their base frame rate", ds)
	}
	var out [][2]Decision
	for range 100 {
		ds, _ = s.Select(time.Now(), est, tracks, ds)
		out = append(out, [2]Decision{ds[2], ds[3]})
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

// After a cap, a track's frame rate and its next layer come back
// under holds that run at the same time, not one after the other: the
// next layer comes with every frame (its key frame restarts all
// temporal layers) after one hold. The frame rate first and then the
// layer after a hold of its own took twice as long.
func TestSelectFrameRateAndLayerComeBackTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1 Mbit/s: 80k audio + 2 x 150k low layers leave 620k, which
		// covers c1's 640x360 (350k more, 75k margin), not twice over
		// (no quick hold: see TestSelectQuickHoldFarAbove).
		ds := capLifted(t, SelectorConfig{}, 1_000_000)
		if d := ds[19]; d[0].Temporal == AllTemporal || d[1].Temporal == AllTemporal {
			t.Fatalf("1.9 s after the lift: %+v, want the frame rates still held", d)
		}
		// Both back after the 2 s hold (at the 21st round): c1 at
		// 640x360 with every frame, c2 (nothing left for its next
		// layer) at the low layer with every frame.
		at := 21
		if d := ds[at][0]; d.Layer != 1 || d.Temporal != AllTemporal {
			t.Fatalf("%d ms after the lift: c1 %+v, want 640x360 with every frame", 100*at, d)
		}
		if d := ds[at][1]; d.Layer != 0 || d.Temporal != AllTemporal {
			t.Fatalf("%d ms after the lift: c2 %+v, want the low layer with every frame", 100*at, d)
		}
	})
}

// An estimate that covers the step twice over takes it after the quick
// hold: a lifted cap is back at the top layers within a second, not
// after two holds of 2 s.
func TestSelectQuickHoldFarAbove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ds := capLifted(t, SelectorConfig{}, 6_000_000)
		at := 6 // the quick hold (500 ms) and one round
		for _, d := range ds[at] {
			if d.Layer != 2 || d.Temporal != AllTemporal {
				t.Fatalf("%d ms after the lift: %+v, want both at 1280x720 with every frame", 100*at, ds[at])
			}
		}
		for _, d := range ds[3] {
			if d.Layer != 0 {
				t.Fatalf("300 ms after the lift: %+v, want still held", ds[3])
			}
		}
	})
}

// A frame rate step up waits the full hold however far the estimate
// covers it: under a cap GCC spikes for a second at times, and a frame
// rate raised on a spike overflows the link. (Tiles of 320x180: no
// next layer to come back with.)
func TestSelectFrameRateHoldOnSpike(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSelector(SelectorConfig{})
		tracks := []TrackInfo{audio("a1"), audio("a2"), camL1T3("c1", 150_000), camL1T3("c2", 150_000)}
		for i := range tracks[2:] {
			tracks[2+i].TileWidth, tracks[2+i].TileHeight = 320, 180
		}
		var ds []Decision
		est := func(i int) int {
			if i >= 50 && i < 60 || i >= 80 {
				return 3_000_000 // a 1 s spike at 5 s, then for good at 8 s
			}
			return 200_000
		}
		for i := range 110 {
			ds, _ = s.Select(time.Now(), est(i), tracks, ds)
			if i >= 20 && i < 100 && (ds[2].Temporal == AllTemporal || ds[3].Temporal == AllTemporal) {
				t.Fatalf("at %d ms: %+v, want the frame rates held", 100*i, ds[2:])
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ds[2].Temporal != AllTemporal || ds[3].Temporal != AllTemporal {
			t.Fatalf("3 s after the estimate rose for good: %+v", ds[2:])
		}
	})
}
