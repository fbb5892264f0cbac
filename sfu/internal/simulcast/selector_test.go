package simulcast

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

func camLayers() []LayerInfo {
	return []LayerInfo{{Width: 320, Height: 180, Bitrate: 150_000}, {Width: 640, Height: 360, Bitrate: 500_000}, {Width: 1280, Height: 720, Bitrate: 1_500_000}}
}

func cam(id string, w, h int) TrackInfo {
	return TrackInfo{ID: id, Kind: Camera, Visible: true, TileWidth: w, TileHeight: h, Layers: camLayers()}
}

func speaker(t TrackInfo) TrackInfo { t.Speaker = true; return t }

func hidden(t TrackInfo) TrackInfo { t.Visible = false; return t }

func screen(id string) TrackInfo {
	return TrackInfo{ID: id, Kind: Screen, Visible: true, TileWidth: 1920, TileHeight: 1080,
		Layers: []LayerInfo{{Width: 1920, Height: 1080, Bitrate: 300_000}, {Width: 1920, Height: 1080, Bitrate: 1_200_000}}}
}

func audio(id string) TrackInfo {
	return TrackInfo{ID: id, Kind: Audio, Layers: []LayerInfo{{Bitrate: 40_000}}}
}

func layers(ds []Decision) []Layer {
	ls := make([]Layer, len(ds))
	for i, d := range ds {
		ls[i] = d.Layer
	}
	return ls
}

func TestSelect(t *testing.T) {
	const N = None
	tests := []struct {
		name     string
		estimate int
		tracks   []TrackInfo
		want     []Layer
	}{
		{"plenty: each tile gets the smallest layer covering it", 10_000_000,
			[]TrackInfo{audio("a"), cam("thumb", 160, 90), cam("mid", 600, 340), cam("big", 1000, 560), cam("huge", 2560, 1440)},
			[]Layer{0, 0, 1, 2, 2}},
		{"unknown tile size takes the top layer", 10_000_000,
			[]TrackInfo{cam("c", 0, 0)}, []Layer{2}},
		{"hidden tiles get nothing", 10_000_000,
			[]TrackInfo{hidden(cam("a", 1280, 720)), cam("b", 1280, 720), hidden(screen("s"))}, []Layer{N, 2, N}},
		{"layers of one resolution: the tile takes the higher frame rate", 10_000_000,
			[]TrackInfo{screen("s")}, []Layer{1}},
		{"no tracks", 1_000_000, nil, []Layer{}},
		{"no bandwidth: audio, and every camera's low layer", 0,
			[]TrackInfo{cam("c", 320, 180), audio("a1"), audio("a2")}, []Layer{0, 0, 0}},
		{"300 kbit/s: audio, then the low layer of every camera", 300_000,
			[]TrackInfo{audio("a1"), audio("a2"), cam("c1", 1280, 720), cam("c2", 1280, 720)}, []Layer{0, 0, 0, 0}},
		{"the low layers beyond the budget raise nothing", 400_000,
			[]TrackInfo{cam("c1", 1280, 720), cam("c2", 1280, 720), cam("c3", 1280, 720)}, []Layer{0, 0, 0}},
		{"every camera low before any is raised", 700_000,
			[]TrackInfo{cam("c1", 1280, 720), cam("c2", 1280, 720), cam("c3", 1280, 720)}, []Layer{0, 0, 0}},
		{"what is left raises the first in order", 1_200_000,
			[]TrackInfo{cam("c1", 1280, 720), cam("c2", 1280, 720), cam("c3", 1280, 720)}, []Layer{1, 0, 0}},
		{"the active speaker is raised first", 1_200_000,
			[]TrackInfo{cam("c1", 1280, 720), speaker(cam("c2", 1280, 720)), cam("c3", 1280, 720)}, []Layer{0, 1, 0}},
		{"screen share before the speaker", 1_800_000,
			[]TrackInfo{speaker(cam("c1", 1280, 720)), screen("s"), cam("c2", 1280, 720)}, []Layer{0, 1, 0}},
		{"screen share low layer first, then speaker to h", 1_300_000,
			[]TrackInfo{speaker(cam("c1", 1280, 720)), screen("s"), cam("c2", 1280, 720)}, []Layer{1, 0, 0}},
		{"larger tile first within a class", 800_000,
			[]TrackInfo{cam("small", 640, 360), cam("large", 1280, 720)}, []Layer{0, 1}},
		{"small tile is not raised past its need", 5_000_000,
			[]TrackInfo{cam("small", 320, 180), cam("large", 1280, 720)}, []Layer{0, 2}},
		{"a layer not arriving is skipped", 10_000_000,
			[]TrackInfo{{ID: "c", Kind: Camera, Visible: true, TileWidth: 1280, TileHeight: 720,
				Layers: []LayerInfo{{Width: 320, Height: 180, Bitrate: 150_000}, {Width: 640, Height: 360, Bitrate: 500_000}, {Width: 1280, Height: 720, Bitrate: 0}}}},
			[]Layer{1}},
		{"only a higher layer arrives: picture beats nothing", 10_000_000,
			[]TrackInfo{{ID: "c", Kind: Camera, Visible: true, TileWidth: 160, TileHeight: 90,
				Layers: []LayerInfo{{Width: 320, Height: 180, Bitrate: 0}, {Width: 640, Height: 360, Bitrate: 500_000}}}},
			[]Layer{1}},
		{"single-layer publisher", 10_000_000,
			[]TrackInfo{{ID: "obs", Kind: Camera, Visible: true, TileWidth: 320, TileHeight: 180,
				Layers: []LayerInfo{{Width: 1920, Height: 1080, Bitrate: 4_000_000}}}},
			[]Layer{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			got, tot := s.Select(time.Unix(1000, 0), tc.estimate, tc.tracks, nil)
			if !slices.Equal(layers(got), tc.want) {
				t.Fatalf("got %v, want %v", layers(got), tc.want)
			}
			used := 0
			for i, d := range got {
				if d.Layer != None && tc.tracks[i].Layers[d.Layer].Bitrate != d.Bitrate {
					t.Fatalf("track %d: bitrate %d for layer %d", i, d.Bitrate, d.Layer)
				}
				used += d.Bitrate
			}
			if tot.Used != used {
				t.Fatalf("totals %+v, decisions use %d", tot, used)
			}
		})
	}
}

func TestSelectTotalsAndWanted(t *testing.T) {
	s := NewSelector(SelectorConfig{})
	got, tot := s.Select(time.Unix(1000, 0), 500_000,
		[]TrackInfo{audio("a"), cam("c", 1280, 720), hidden(cam("h", 640, 360))}, nil)
	if got[1].Wanted != 2 || got[1].Layer != 0 || got[2].Wanted != None {
		t.Fatalf("decisions %+v", got)
	}
	if tot.Wanted != 40_000+1_500_000 || tot.Used != 40_000+150_000 {
		t.Fatalf("totals %+v", tot)
	}
}

// Totals.Limited counts the tracks a higher estimate would raise: held
// below their wanted layer, or at a lowered frame rate; not a
// single-layer video the estimate does not cover (there is nothing to
// switch it to), nor tracks already at their tiles' layers.
func TestSelectTotalsLimited(t *testing.T) {
	now := time.Unix(1000, 0)
	single := TrackInfo{ID: "obs", Kind: Camera, Visible: true, TileWidth: 1280, TileHeight: 720,
		Layers: []LayerInfo{{Width: 1280, Height: 720, Bitrate: 2_500_000}}}
	small := camL1T3("small", 150_000)
	small.TileWidth, small.TileHeight = 320, 180
	for _, tc := range []struct {
		name     string
		estimate int
		tracks   []TrackInfo
		want     int
	}{
		{"at the tiles' layers", 5_000_000, []TrackInfo{audio("a"), cam("c", 1280, 720), cam("t", 320, 180)}, 0},
		{"single layer over the estimate", 1_000_000, []TrackInfo{audio("a"), single}, 0},
		{"below the wanted layer", 500_000, []TrackInfo{audio("a"), cam("c", 1280, 720), cam("t", 320, 180)}, 1},
		{"frame rate lowered", 100_000, []TrackInfo{audio("a"), small}, 1},
		{"hidden", 100_000, []TrackInfo{audio("a"), hidden(cam("h", 1280, 720))}, 0},
	} {
		ds, tot := NewSelector(SelectorConfig{}).Select(now, tc.estimate, tc.tracks, nil)
		if tot.Limited != tc.want {
			t.Errorf("%s: %d limited, want %d (decisions %+v)", tc.name, tot.Limited, tc.want, ds)
		}
	}
}

// A tile whose wanted layer is not arriving (its publisher stopped it)
// still wants the best layer below it that does: the total to probe
// for counts that, not nothing.
func TestSelectWantedCountsTheBestArrivingLayer(t *testing.T) {
	s := NewSelector(SelectorConfig{})
	stopped := cam("s", 1280, 720)
	stopped.Layers[2].Bitrate = 0
	_, tot := s.Select(time.Unix(1000, 0), 300_000, []TrackInfo{audio("a"), cam("c", 1280, 720), stopped}, nil)
	if want := 40_000 + 1_500_000 + 500_000; tot.Wanted != want {
		t.Fatalf("wanted %d, want %d (the stopped camera's 640x360 counted)", tot.Wanted, want)
	}
}

func TestSelectDoesNotAllocateOnceWarm(t *testing.T) {
	s := NewSelector(SelectorConfig{})
	tracks := []TrackInfo{audio("a"), cam("c1", 1280, 720), speaker(cam("c2", 640, 360)), screen("s")}
	var dst []Decision
	now := time.Unix(1000, 0)
	dst, _ = s.Select(now, 3_000_000, tracks, dst)
	n := testing.AllocsPerRun(100, func() {
		dst, _ = s.Select(now, 3_000_000, tracks, dst)
	})
	if n != 0 {
		t.Fatalf("%v allocations per selection", n)
	}
}

// run calls Select every 100 ms for d with the estimate est(t), t the
// time since the start, and returns the layer of the first track at
// each call.
func runSelector(s *Selector, d time.Duration, tracks []TrackInfo, est func(time.Duration) int) []Layer {
	var out []Layer
	var dst []Decision
	start := time.Now()
	for time.Since(start) < d {
		dst, _ = s.Select(time.Now(), est(time.Since(start)), tracks, dst)
		out = append(out, dst[0].Layer)
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

func changes(ls []Layer) int {
	n := 0
	for i := 1; i < len(ls); i++ {
		if ls[i] != ls[i-1] {
			n++
		}
	}
	return n
}

func TestHysteresis(t *testing.T) {
	tracks := []TrackInfo{cam("c", 1280, 720)}
	const fNeed = 1_500_000

	t.Run("steps down at once, up only after the hold", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			ls := runSelector(s, 10*time.Second, tracks, func(t time.Duration) int {
				if t >= 3*time.Second && t < 6*time.Second {
					return 700_000
				}
				return 2_000_000
			})
			// 100 ms per sample: f, then h from 3 s at once, f again at 8 s.
			if ls[0] != 2 || ls[29] != 2 || ls[30] != 1 || ls[79] != 1 || ls[80] != 2 || ls[99] != 2 {
				t.Fatalf("layers over time: %v", ls)
			}
		})
	})
	t.Run("an estimate at the need does not step up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			runSelector(s, time.Second, tracks, func(time.Duration) int { return 700_000 })
			ls := runSelector(s, 10*time.Second, tracks, func(time.Duration) int { return fNeed * 110 / 100 })
			if changes(ls) != 0 || ls[0] != 1 {
				t.Fatalf("layers over time: %v", ls)
			}
		})
	})
	t.Run("an estimate swinging around the need does not flap", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			ls := runSelector(s, 20*time.Second, tracks, func(t time.Duration) int {
				if (t/time.Second)%2 == 0 {
					return fNeed * 95 / 100
				}
				return fNeed * 130 / 100
			})
			// The fresh track starts at h (95% of f's need lacks the
			// margin), and the 1 s upswings never last the 2 s hold.
			if changes(ls) != 0 || ls[0] != 1 {
				t.Fatalf("%d changes: %v", changes(ls), ls)
			}
		})
	})
	t.Run("a growing tile steps up at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			small := []TrackInfo{cam("c", 320, 180)}
			if ls := runSelector(s, time.Second, small, func(time.Duration) int { return 5_000_000 }); ls[0] != 0 {
				t.Fatalf("small tile: %v", ls)
			}
			if ls := runSelector(s, 100*time.Millisecond, tracks, func(time.Duration) int { return 5_000_000 }); ls[0] != 2 {
				t.Fatalf("after the tile grew: %v", ls)
			}
		})
	})
	t.Run("an estimate below the low layer keeps the low layer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			ls := runSelector(s, 6*time.Second, tracks, func(t time.Duration) int {
				if t < 3*time.Second {
					return 50_000
				}
				return 200_000
			})
			if changes(ls) != 0 || ls[0] != 0 {
				t.Fatalf("layers over time: %v", ls)
			}
		})
	})
	t.Run("a track that leaves forgets its state", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewSelector(SelectorConfig{})
			runSelector(s, time.Second, tracks, func(time.Duration) int { return 700_000 })
			runSelector(s, 100*time.Millisecond, []TrackInfo{cam("other", 1280, 720)}, func(time.Duration) int { return 700_000 })
			if len(s.state) != 1 {
				t.Fatalf("%d states kept", len(s.state))
			}
			if ls := runSelector(s, 100*time.Millisecond, tracks, func(time.Duration) int { return 2_000_000 }); ls[0] != 2 {
				t.Fatalf("returning track held back: %v", ls)
			}
		})
	})
}

// A layer measured cheaper than the one below it has only just started
// or resumed (its first window was part of a second): it is paid for at
// the lower layer's bitrate at least, and a subscriber whose estimate
// covers neither stays where it is, past any hold. (At its measured 20
// kbit/s, 1280x720 looked free.)
func TestSelectResumedLayerNotFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := cam("c", 1280, 720)
		c.Layers[2].Bitrate = 20_000
		tracks := []TrackInfo{audio("a1"), audio("a2"), c}
		ls := runSelector(NewSelector(SelectorConfig{}), 5*time.Second, tracks[2:], func(time.Duration) int { return 320_000 })
		if changes(ls) != 0 || ls[0] != 0 {
			t.Fatalf("layers over time at 320 kbit/s: %v", ls)
		}
		// With room for 640x360 (and its margin), 1280x720 at 20 kbit/s
		// costs what 640x360 does: taken, and paid for as such.
		s := NewSelector(SelectorConfig{})
		var ds []Decision
		for range 30 {
			ds, _ = s.Select(time.Now(), 800_000, tracks, ds)
			time.Sleep(100 * time.Millisecond)
		}
		if ds[2].Layer != 2 || ds[2].Bitrate != 500_000 {
			t.Fatalf("at 800 kbit/s: %+v", ds[2])
		}
	})
}

func BenchmarkSelect(b *testing.B) {
	s := NewSelector(SelectorConfig{})
	tracks := []TrackInfo{audio("a1"), audio("a2"), audio("a3")}
	for i := range 9 {
		tracks = append(tracks, cam(string(rune('a'+i)), 320*(1+i%3), 180*(1+i%3)))
	}
	tracks[4].Speaker = true
	tracks = append(tracks, screen("s"))
	var dst []Decision
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = s.Select(now, 2_500_000, tracks, dst)
	}
}

// TestStalledLowLayerWaits: a camera's low layer stalls for a second (a
// publisher short of CPU) while its top layer arrives. A subscriber
// whose estimate cannot carry the top layer keeps the low one, and the
// switcher may not fall back above it; one with room takes the top
// layer at once.
func TestStalledLowLayerWaits(t *testing.T) {
	stalled := func() TrackInfo {
		c := cam("c", 1280, 720)
		c.Layers = camLayers()
		c.Layers[0].Bitrate, c.Layers[0].Stalled = 0, 120_000
		c.Layers[1].Bitrate = 0 // paused: nobody needed it
		return c
	}
	s := NewSelector(SelectorConfig{})
	ds, _ := s.Select(time.Now(), 250_000, []TrackInfo{audio("a"), stalled()}, nil)
	// The ceiling may pass h, which does not arrive (the switcher never
	// takes a layer that does not), not f.
	if d := ds[1]; d.Layer != 0 || d.Ceiling >= 2 {
		t.Fatalf("capped at 250 kbit/s: layer %d, ceiling %d; want 0 and below 2 (wait for the stalled low layer)", d.Layer, d.Ceiling)
	}
	s = NewSelector(SelectorConfig{})
	ds, _ = s.Select(time.Now(), 10_000_000, []TrackInfo{audio("a"), stalled()}, nil)
	if d := ds[1]; d.Layer != 2 {
		t.Fatalf("with room: layer %d, want the top layer that arrives", d.Layer)
	}
}

// TestCeiling: the switcher may fall back above the chosen layer only as
// far as what the estimate leaves carries.
func TestCeiling(t *testing.T) {
	s := NewSelector(SelectorConfig{})
	ds, _ := s.Select(time.Now(), 700_000, []TrackInfo{cam("c", 1280, 720)}, nil)
	// q 150k, then h (350k more, its margin within the 550k left): 200k
	// left, f would need 1M more.
	if d := ds[0]; d.Layer != 1 || d.Ceiling != 1 {
		t.Fatalf("700 kbit/s: layer %d, ceiling %d; want 1 and 1", d.Layer, d.Ceiling)
	}
	ds, _ = s.Select(time.Now(), 300_000, []TrackInfo{cam("c", 160, 90)}, nil)
	// A thumbnail on q with 150k left: h (350k more) is beyond it.
	if d := ds[0]; d.Layer != 0 || d.Ceiling != 0 {
		t.Fatalf("thumbnail at 300 kbit/s: layer %d, ceiling %d; want 0 and 0", d.Layer, d.Ceiling)
	}
	ds, _ = s.Select(time.Now(), 10_000_000, []TrackInfo{cam("c", 160, 90)}, nil)
	if d := ds[0]; d.Layer != 0 || d.Ceiling != 2 {
		t.Fatalf("thumbnail with room: layer %d, ceiling %d; want 0 and 2", d.Layer, d.Ceiling)
	}
}
