package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUXPreJoin: a bare room link opens the pre-join screen with a camera
// preview, a moving microphone meter and device pickers; Pia joins with
// her camera off and Quin sees it off from the start; after a reload the
// screen remembers her name and choice. Checked at phone size (the whole
// flow) and at desktop size (layout), with every control reachable and
// nothing overflowing sideways.
func TestUXPreJoin(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "ux-prejoin"
	pia := startSized(t, ctx, "Pia", 390, 844)
	if err := pia.B.Navigate(ctx, srv.URL+"/r/"+room); err != nil {
		t.Fatal(err)
	}
	pia.waitVisible(ctx, "prejoin", true)
	// On a phone the form may scroll; on a desktop all of it fits.
	checkReachable := func(what string, scroll bool) {
		t.Helper()
		for _, id := range []string{"prejoin-join", "prejoin-mic", "prejoin-cam", "prejoin-name"} {
			why := ""
			if scroll {
				why = pia.hitTestScrolled(ctx, id)
			} else {
				why = pia.hitTest(ctx, id)
			}
			if why != "" {
				t.Errorf("%s: %s not clickable: %s", what, id, why)
			}
		}
		if o := pia.overflow(ctx); o != "" {
			t.Errorf("%s: horizontal overflow: %s", what, o)
		}
	}
	checkReachable("phone", true)
	// The preview plays the camera and the pickers list the devices.
	if !poll(ctx, 15*time.Second, func() bool {
		v, _ := Eval[bool](ctx, pia.B, `(() => {
			const v = document.querySelector('[data-testid="prejoin-preview"]');
			return v.videoWidth > 0 && document.querySelector('[data-testid="prejoin-camera-select"]').options.length > 0
				&& document.querySelector('[data-testid="prejoin-mic-select"]').options.length > 0;
		})()`)
		return v
	}) {
		t.Fatalf("Pia: no camera preview or no devices listed")
	}
	// Browsers start audio analysis after a gesture: a click on the screen.
	if err := pia.B.Click(ctx, `[data-testid="prejoin-room"]`); err != nil {
		t.Fatal(err)
	}
	// The fake microphone beeps: the meter must move.
	peak := 0.0
	poll(ctx, 10*time.Second, func() bool {
		v, _ := Eval[string](ctx, pia.B, `document.querySelector('[data-testid="mic-level"]').dataset.level`)
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > peak {
			peak = f
		}
		return peak > 0.05
	})
	if peak <= 0.05 {
		t.Errorf("Pia: microphone meter peaked at %.2f, want it to move with the sound", peak)
	}
	if err := pia.B.Click(ctx, `[data-testid="prejoin-cam"]`); err != nil {
		t.Fatal(err)
	}
	pia.waitVisible(ctx, "prejoin-cam-off", true)
	tctx, cancel := context.WithTimeout(pia.B.Context(), 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="prejoin-name"]`), "Pia", chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	pia.shot(ctx, "prejoin-phone")
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	checkReachable("desktop", false)
	pia.shot(ctx, "prejoin-desktop")
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	if err := pia.B.Click(ctx, `[data-testid="prejoin-join"]`); err != nil {
		t.Fatal(err)
	}
	pia.waitState(ctx, 30*time.Second, "joined with the camera off", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Self.Name == "Pia" && s.Publisher == "connected"
	})
	if on, _ := Eval[bool](ctx, pia.B, `window.parley.state().local.camera.enabled`); on {
		t.Errorf("Pia: camera sending although she chose camera off")
	}

	quin := join(t, ctx, srv, room, "Quin")
	if !poll(ctx, 20*time.Second, func() bool {
		v, _ := Eval[string](ctx, quin.B, `(() => {
			const t = [...document.querySelectorAll('[data-testid="tile"]')].find(e => e.textContent.includes('Pia'));
			return t ? t.dataset.camMuted : 'no tile';
		})()`)
		return v == "true"
	}) {
		t.Errorf("Quin: Pia's tile does not show her camera off")
	}
	if mic, _ := Eval[bool](ctx, quin.B, `(() => {
		const t = [...document.querySelectorAll('[data-testid="tile"]')].find(e => e.textContent.includes('Pia'));
		return t ? t.dataset.micMuted === 'true' : true;
	})()`); mic {
		t.Errorf("Quin: Pia's microphone shows muted, she joined with it on")
	}
	quin.shot(ctx, "sees-pia-camera-off")

	// Reload: the screen remembers her name and the camera-off choice.
	if err := pia.B.Navigate(ctx, srv.URL+"/r/"+room); err != nil {
		t.Fatal(err)
	}
	pia.waitVisible(ctx, "prejoin", true)
	got, _ := Eval[[]string](ctx, pia.B, `[document.querySelector('[data-testid="prejoin-name"]').value,
		document.querySelector('[data-testid="prejoin-cam"]').getAttribute('aria-pressed'),
		document.querySelector('[data-testid="prejoin-mic"]').getAttribute('aria-pressed')]`)
	if len(got) != 3 || got[0] != "Pia" || got[1] != "true" || got[2] != "false" {
		t.Errorf("Pia after reload: name, camera-off, muted = %q, want Pia, true, false", got)
	}
}

// hitTestScrolled is hitTest after scrolling the element into view (a
// tall form may need scrolling on a phone, which is fine).
func (p *participant) hitTestScrolled(ctx context.Context, testid string) string {
	p.t.Helper()
	if _, err := Eval[bool](ctx, p.B, `(() => { const e = document.querySelector('[data-testid="`+testid+`"]'); if (e) e.scrollIntoView({block: 'center'}); return true; })()`); err != nil {
		p.t.Fatal(err)
	}
	return p.hitTest(ctx, testid)
}
