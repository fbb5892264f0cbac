package firefox

import (
	"strings"
	"testing"
	"time"
)

// TestFirefoxBlockedSoundStartsOnClick covers a Firefox that refuses to
// play sound before a user gesture: the page captures nothing Firefox
// counts as a granted camera or microphone (here: fake devices not
// counted as a capture, as for a user who joins by link and has not
// granted a device), so the remote <audio> cannot autoplay. The page must
// say so, and one real click anywhere must start the sound.
func TestFirefoxBlockedSoundStartsOnClick(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "firefox-sound"
	fox, _ := joinFirefox(t, ctx, srv.URL, room, "Fox", Options{
		Prefs: map[string]any{"media.navigator.permission.fake": false},
	})
	joinChromium(t, ctx, srv.URL, room, "Chro")
	fox.waitSeesAndHears(ctx, "Chro")

	type banner struct {
		Text         string `json:"text"`
		X, Y         int
		AudioPaused  int `json:"audioPaused"`
		AudioPlaying int `json:"audioPlaying"`
	}
	const probe = `(() => {
		const b = document.querySelector('[data-testid="banner"]');
		const r = b.getBoundingClientRect();
		const audio = [...document.querySelectorAll('[data-testid="remote-audio"]')];
		return {
			text: b.hidden ? '' : b.textContent,
			X: Math.round(r.left + r.width / 2), Y: Math.round(r.top + r.height / 2),
			audioPaused: audio.filter(a => a.paused).length,
			audioPlaying: audio.filter(a => !a.paused).length,
		};
	})()`
	var last banner
	var lastErr error
	if !poll(ctx, 20*time.Second, func() bool {
		last, lastErr = eval[banner](ctx, fox, probe)
		return lastErr == nil && strings.Contains(last.Text, "Click anywhere to enable sound") && last.AudioPaused > 0
	}) {
		t.Fatalf("Fox: no click-for-sound notice with paused audio within 20 s: %+v (err %v)", last, lastErr)
	}
	if err := fox.page.click(ctx, last.X, last.Y); err != nil {
		t.Fatal(err)
	}
	fox.waitPlaying(ctx, "Chro")
	if !poll(ctx, 5*time.Second, func() bool {
		last, lastErr = eval[banner](ctx, fox, probe)
		return lastErr == nil && last.Text == "" && last.AudioPaused == 0 && last.AudioPlaying > 0
	}) {
		t.Errorf("Fox: after the click the notice should go and every audio element play: %+v (err %v)", last, lastErr)
	}
}
