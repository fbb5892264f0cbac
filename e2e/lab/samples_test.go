package lab

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/netlab"
)

// Readings of the recorder's samples that several scenarios assert on.

// cameras returns the camera tracks of a sample (video not from a
// screen share).
func cameras(s netlab.Sample) []netlab.Track {
	var out []netlab.Track
	for _, t := range s.Tracks {
		if t.Kind == "video" && !strings.Contains(t.From, " ") {
			out = append(out, t)
		}
	}
	return out
}

// allAt reports whether the sample shows want cameras, all decoding at
// height h.
func allAt(s netlab.Sample, want, h int) bool {
	cams := cameras(s)
	if len(cams) != want {
		return false
	}
	for _, t := range cams {
		if t.Height != h || t.FPS <= 0 {
			return false
		}
	}
	return true
}

// tallest is the tallest camera height decoding in a sample.
func tallest(s netlab.Sample) int {
	h := 0
	for _, t := range cameras(s) {
		if t.FPS > 0 {
			h = max(h, t.Height)
		}
	}
	return h
}

// longestFreeze is the longest single freeze Chromium counted in one
// host's samples, and whose camera it was: from the growth of each
// camera's freeze time between two samples when freezes were counted in
// between (their average, when more than one ended within a second). A
// freeze counts once it has ended; longestVideoStall sees one still going.
func longestFreeze(ss []netlab.Sample) (seconds float64, from string) {
	for i := 1; i < len(ss); i++ {
		prev := map[string]netlab.Track{}
		for _, tr := range cameras(ss[i-1]) {
			prev[tr.From] = tr
		}
		for _, tr := range cameras(ss[i]) {
			p, ok := prev[tr.From]
			if !ok || tr.FreezeCount <= p.FreezeCount {
				continue
			}
			if f := (tr.FreezeSeconds - p.FreezeSeconds) / float64(tr.FreezeCount-p.FreezeCount); f > seconds {
				seconds, from = f, tr.From
			}
		}
	}
	return seconds, from
}

// longestVideoStall is the longest time one host's page decoded no frame of
// a camera it receives, and whose camera it was: from the sample before
// a run of samples with no frame decoded to the run's last sample (a
// lower bound: the last frame came before the first, the next after the
// last). A camera missing from a sample (the page gone or busy) ends a
// run, as its frames are unknown.
func longestVideoStall(ss []netlab.Sample) (seconds float64, from string) {
	since := map[string]float64{} // by camera: when its frames last advanced
	for _, s := range ss {
		seen := map[string]bool{}
		for _, tr := range cameras(s) {
			seen[tr.From] = true
			t0, ok := since[tr.From]
			if !ok || tr.FPS > 0 {
				since[tr.From] = s.T
				continue
			}
			if d := s.T - t0; d > seconds {
				seconds, from = d, tr.From
			}
		}
		for k := range since {
			if !seen[k] {
				delete(since, k)
			}
		}
	}
	return seconds, from
}

// latest is host's most recent sample (zero before the first).
func (r *recorder) latest(host string) netlab.Sample {
	ss := r.samples(host, 0, 1e9)
	if len(ss) == 0 {
		return netlab.Sample{}
	}
	return ss[len(ss)-1]
}

// TestSampleReadings: the freeze readings the scenarios assert on see a
// freeze Chromium counted and a camera that stopped decoding, and
// nothing in smooth video.
func TestSampleReadings(t *testing.T) {
	at := func(sec float64, fps float64, count int, frozen float64) netlab.Sample {
		return netlab.Sample{T: sec, Host: "bob", Tracks: []netlab.Track{
			{From: "Ada", Kind: "video", FPS: fps, Height: 360, FreezeCount: count, FreezeSeconds: frozen},
			{From: "Carol", Kind: "video", FPS: 15, Height: 720},
		}}
	}
	smooth := []netlab.Sample{at(0, 15, 0, 0), at(1, 15, 0, 0), at(2, 15, 0, 0)}
	if f, _ := longestFreeze(smooth); f != 0 {
		t.Errorf("smooth video: longest freeze %.2f s", f)
	}
	if s, _ := longestVideoStall(smooth); s != 0 {
		t.Errorf("smooth video: longest stall %.2f s", s)
	}
	// Ada's camera stops from t=1 to t=4, and Chromium counts the
	// 3.2 s freeze when it ends.
	frozen := []netlab.Sample{at(0, 15, 0, 0), at(1, 15, 0, 0), at(2, 0, 0, 0), at(3, 0, 0, 0), at(4, 0, 0, 0), at(5, 10, 1, 3.2)}
	if f, from := longestFreeze(frozen); f != 3.2 || from != "Ada" {
		t.Errorf("a 3.2 s freeze of Ada's camera read as %.2f s of %q's", f, from)
	}
	if s, from := longestVideoStall(frozen); s != 3 || from != "Ada" {
		t.Errorf("Ada's camera with no frames from t=1 to t=4 read as a stall of %.1f s of %q's", s, from)
	}
}
