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
