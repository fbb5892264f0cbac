package firefox

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/promtext"
)

// audioStat is the part of window.parley.stats() about received audio.
type audioStat struct {
	Name                 string `json:"name"`
	Kind                 string `json:"kind"`
	TotalSamplesReceived int64  `json:"totalSamplesReceived"`
	ConcealedSamples     int64  `json:"concealedSamples"`
}

// metric reads one unlabelled sample from the server's /metrics.
func metric(t *testing.T, srvURL, name string) float64 {
	t.Helper()
	series, err := promtext.Scrape(context.Background(), srvURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := series.Value(name)
	if !ok {
		t.Fatalf("%s not in /metrics", name)
	}
	return v
}

// TestFirefoxHearsChromiumREDPublisher: Chromium publishes its microphone
// as RED (the web client prefers it and the server negotiates it); a
// Firefox participant in the same call hears it, with the SFU unwrapping
// RED to Opus if Firefox did not negotiate RED: its received samples grow
// at the audio rate and almost none are concealed on loopback.
func TestFirefoxHearsChromiumREDPublisher(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "firefox-red"
	fox, _ := joinFirefox(t, ctx, srv.URL, room, "Fox", Options{})
	joinChromium(t, ctx, srv.URL, room, "Chro")

	read := func() (audioStat, bool) {
		all, err := eval[[]audioStat](ctx, fox, `window.parley.stats()`)
		if err != nil {
			return audioStat{}, false
		}
		for _, a := range all {
			if a.Name == "Chro" && a.Kind == "audio" {
				return a, true
			}
		}
		return audioStat{}, false
	}
	var first audioStat
	if !poll(ctx, mediaLimit, func() bool {
		var ok bool
		first, ok = read()
		return ok && first.TotalSamplesReceived > 0
	}) {
		t.Fatalf("Fox receives no audio from Chro: %+v", first)
	}
	const window = 10 * time.Second
	time.Sleep(window)
	last, _ := read()
	got := last.TotalSamplesReceived - first.TotalSamplesReceived
	concealed := last.ConcealedSamples - first.ConcealedSamples
	t.Logf("Fox from Chro: %d samples in %v, %d concealed; RED unwrapped by the SFU: %v packets",
		got, window, concealed, metric(t, srv.URL, "parley_sfu_red_unwrapped_total"))
	// Half the 48 kHz rate at least: the fake microphone's beep has
	// pauses, and under load Firefox's counters were seen at 75%.
	if got < int64(48000*window.Seconds()/2) {
		t.Errorf("Fox received %d samples in %v (48 kHz)", got, window)
	}
	if c := float64(concealed) / float64(max(got, 1)); c > 0.03 {
		t.Errorf("Fox concealed %.1f%% of Chro's audio on loopback (want under 3%%)", c*100)
	}
}
