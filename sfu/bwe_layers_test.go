package sfu

import (
	"testing"
	"time"
)

// TestSelectInfoResumedLayer: for two seconds after dynacast resumed a
// layer, the selector sees it at its nominal bitrate at least, not at
// the part-second its first window measured; then at what it measures.
// A layer not resumed is taken as measured.
func TestSelectInfoResumedLayer(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := &publishedTrack{s: &SFU{cfg: DefaultConfig()}, video: true, clockRate: 90000, info: TrackInfo{SID: "TR_cam"}}
	tr.initLayers([]string{"q", "h", "f"}, 16)
	for i, ly := range tr.layers {
		ly.last = now.Add(-100 * time.Millisecond)
		ly.bitrate = []float64{120_000, 40_000, 30_000}[i]
	}
	tr.dyn.initialized, tr.dyn.top, tr.dyn.settled = true, 2, 2
	tr.dyn.resumed[1] = now.Add(-1500 * time.Millisecond)
	tr.dyn.resumed[2] = now.Add(-1500 * time.Millisecond)
	d := &downTrack{src: tr, sub: &Peer{}}
	got := func(at time.Time) []int {
		var bs []int
		for _, li := range d.selectInfo(at).Layers {
			bs = append(bs, li.Bitrate)
		}
		return bs
	}
	if bs := got(now); bs[0] != 120_000 || bs[1] != nominalLayerBitrate[1] || bs[2] != nominalLayerBitrate[2] {
		t.Fatalf("1.5 s after the resume: bitrates %v, want q as measured, h and f at their nominal rates", bs)
	}
	for _, ly := range tr.layers {
		ly.last = now.Add(600 * time.Millisecond)
	}
	if bs := got(now.Add(700 * time.Millisecond)); bs[0] != 120_000 || bs[1] != 40_000 || bs[2] != 30_000 {
		t.Fatalf("2.2 s after the resume: bitrates %v, want as measured", bs)
	}
}
