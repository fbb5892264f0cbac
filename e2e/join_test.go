package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startBrowser starts a browser that the test navigates by itself.
func startBrowser(t *testing.T, ctx context.Context, name string) *participant {
	t.Helper()
	// README screenshots (PARLEY_SCREENSHOTS) show the camera the client
	// asks for; the tests' own runs take the small one.
	b, err := StartBrowser(context.Background(), name, BrowserOptions{HDCamera: os.Getenv("PARLEY_SCREENSHOTS") != ""})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: name, B: b}
	t.Cleanup(func() { p.finish(ctx) })
	return p
}

// TestJoinPathsAndMute covers the two other ways in (the landing form and
// an operator's link with #token=) and the mute indicator.
func TestJoinPathsAndMute(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-paths"

	// Eve types her name and the room into the landing form.
	eve := startBrowser(t, ctx, "Eve")
	if err := eve.B.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(eve.B.Context(), 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="name-input"]`), "Eve"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="room-input"]`), room),
	); err != nil {
		t.Fatalf("fill the landing form: %v", err)
	}
	eve.shot(ctx, "landing")
	if err := eve.B.Click(ctx, `[data-testid="join-button"]`); err != nil {
		t.Fatal(err)
	}
	// The form leads to the pre-join screen, with her name filled in.
	if err := eve.B.Click(ctx, `[data-testid="prejoin-join"]`); err != nil {
		t.Fatal(err)
	}
	eve.waitState(ctx, 30*time.Second, "joined from the form", func(s clientState) bool {
		return s.Status == "connected" && s.Room == room && s.Publisher == "connected"
	})
	if path, err := Eval[string](ctx, eve.B, `location.pathname`); err != nil || path != "/r/"+room {
		t.Errorf("Eve: address after joining is %q (err %v), want /r/%s (a shareable link)", path, err, room)
	}

	// Fay gets a link with a token in the fragment and no name.
	fay := startBrowser(t, ctx, "Fay")
	token := devToken(t, srv, room, "Fay")
	if err := fay.B.Navigate(ctx, fmt.Sprintf("%s/r/%s#token=%s", srv.URL, room, token)); err != nil {
		t.Fatal(err)
	}
	fay.waitState(ctx, 30*time.Second, "joined with the fragment token", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Self.Name == "Fay" && s.Publisher == "connected"
	})
	if hash, err := Eval[string](ctx, fay.B, `location.hash`); err != nil || hash != "" {
		t.Errorf("Fay: token still in the address bar: %q (err %v)", hash, err)
	}

	waitSeesOthers(ctx, eve, fay)
	waitSeesOthers(ctx, fay, eve)
	fay.waitTiles(ctx, 10*time.Second, "Eve's name", func(n []string) bool { return slices.Contains(n, "Eve") })

	// Eve mutes her microphone; Fay's grid shows it, and unmuting clears it.
	eveSid := eve.waitState(ctx, time.Second, "known", func(s clientState) bool { return s.Self != nil }).Self.Sid
	micMuted := fmt.Sprintf(`document.querySelector('[data-testid="tile"][data-participant=%q][data-source="camera"]')?.dataset.micMuted ?? "none"`, eveSid)
	for _, want := range []string{"true", "false"} {
		if err := eve.B.Click(ctx, `[data-testid="mic-toggle"]`); err != nil {
			t.Fatal(err)
		}
		var got string
		if !poll(ctx, 10*time.Second, func() bool {
			got, _ = Eval[string](ctx, fay.B, micMuted)
			return got == want
		}) {
			t.Fatalf("Fay: Eve's tile mic-muted = %q, want %q after Eve toggled", got, want)
		}
		if want == "true" {
			fay.shot(ctx, "eve-muted")
		}
	}

	// Eve switches to another microphone from the devices panel. The
	// sender's track is replaced without renegotiation: same published
	// track id, new device, and Fay keeps receiving Eve's audio.
	type micInfo struct {
		TrackID string `json:"trackId"`
		Device  string `json:"device"`
	}
	readMic := func() micInfo {
		m, err := Eval[micInfo](ctx, eve.B, `window.parley.state().local.microphone`)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	oldMic := readMic()
	if err := eve.B.Click(ctx, `[data-testid="devices-toggle"]`); err != nil {
		t.Fatal(err)
	}
	var options []string
	if !poll(ctx, 10*time.Second, func() bool {
		options, _ = Eval[[]string](ctx, eve.B, `[...document.querySelectorAll('[data-testid="mic-select"] option')].map(o => o.value)`)
		return len(options) >= 2
	}) {
		t.Fatalf("Eve: microphone list has %d entries, want at least 2 (Chromium's fake devices offer several)", len(options))
	}
	var next string
	for _, o := range options {
		if o != oldMic.Device && o != "default" && o != "communications" {
			next = o
			break
		}
	}
	if next == "" {
		t.Fatalf("Eve: no other microphone among %q (current %q)", options, oldMic.Device)
	}
	// A select's change event is what a user produces by picking an entry.
	if _, err := Eval[any](ctx, eve.B, fmt.Sprintf(`(() => { const s = document.querySelector('[data-testid="mic-select"]'); s.value = %q; s.dispatchEvent(new Event('change')); })()`, next)); err != nil {
		t.Fatal(err)
	}
	var newMic micInfo
	if !poll(ctx, 10*time.Second, func() bool {
		newMic = readMic()
		return newMic.Device == next
	}) {
		t.Fatalf("Eve: microphone device is %q after choosing %q", newMic.Device, next)
	}
	eve.shot(ctx, "devices")
	if newMic.TrackID != oldMic.TrackID {
		t.Errorf("Eve: published microphone id changed from %s to %s; the server knows the old one", oldMic.TrackID, newMic.TrackID)
	}
	stats, err := fay.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var eveAudio []trackStat
	for _, s := range stats {
		if s.Name == "Eve" && s.Kind == "audio" {
			eveAudio = append(eveAudio, s)
		}
	}
	if len(eveAudio) != 1 {
		t.Fatalf("Fay: %d audio tracks from Eve, want 1: %+v", len(eveAudio), stats)
	}
	fay.assertFlowing(ctx, eveAudio)
}
