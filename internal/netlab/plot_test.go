//go:build linux

package netlab

import (
	"bytes"
	"encoding/json"
	"image/png"
	"testing"
)

// TestPlotDrawsEveryHost: a timeline of two hosts renders as one PNG with
// a panel per host, the cap in red and the bitrate in blue.
func TestPlotDrawsEveryHost(t *testing.T) {
	tl := Timeline{Scenario: "test"}
	for i := range 30 {
		capKbps := 0
		if i >= 10 && i < 20 {
			capKbps = 300
		}
		for _, h := range []string{"ada", "bob"} {
			tl.Samples = append(tl.Samples, Sample{T: float64(i), Host: h, DownCapKbps: capKbps, Tracks: []Track{
				{From: "carol", Kind: "video", Kbps: 1500, Height: 720, FPS: 30},
				{From: "carol", Kind: "audio", Kbps: 40},
			}})
		}
	}
	var buf bytes.Buffer
	if err := tl.Plot(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if h := img.Bounds().Dy(); h < 2*200 {
		t.Errorf("height %d: want a panel per host", h)
	}
	var red, blue int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch {
			case r>>8 == 220 && g>>8 == 30 && bl>>8 == 30:
				red++
			case r>>8 == 30 && g>>8 == 80 && bl>>8 == 220:
				blue++
			}
		}
	}
	if red < 200 || blue < 200 {
		t.Errorf("red %d, blue %d pixels: the cap and the bitrate are not drawn", red, blue)
	}
	if err := (&Timeline{}).Plot(&buf); err == nil {
		t.Error("an empty timeline plotted without error")
	}
}

// TestTimelineJSONRoundTrips: the one-sample-per-line JSON is a
// Timeline again.
func TestTimelineJSONRoundTrips(t *testing.T) {
	tl := Timeline{Scenario: "s", Notes: []string{"t=1 cap"}, Samples: []Sample{
		{T: 1, Host: "ada", DownCapKbps: 300, Tracks: []Track{{From: "bob", Kind: "video", Height: 180}}},
		{T: 2, Host: "ada"},
	}}
	js, err := tl.marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back Timeline
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("%v:\n%s", err, js)
	}
	if back.Scenario != "s" || len(back.Notes) != 1 || len(back.Samples) != 2 || back.Samples[0].Tracks[0].Height != 180 {
		t.Fatalf("round trip: %+v", back)
	}
	if n := bytes.Count(js, []byte("\n")); n != 5 {
		t.Errorf("%d lines, want two header lines, one per sample and the end:\n%s", n, js)
	}
}
