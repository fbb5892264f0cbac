package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// recordNotices keeps every join/leave notice the page shows (they go
// after a few seconds, possibly before the test looks).
func (p *participant) recordNotices(ctx context.Context) {
	p.t.Helper()
	if _, err := Eval[bool](ctx, p.B, `(() => {
		window.__notices = [];
		new MutationObserver((muts) => { for (const m of muts) for (const n of m.addedNodes) window.__notices.push(n.textContent); })
			.observe(document.querySelector('[data-testid="people-notices"]'), {childList: true});
		return true;
	})()`); err != nil {
		p.t.Fatal(err)
	}
}

// noticeSeen waits for a join/leave notice with exactly text.
func (p *participant) noticeSeen(ctx context.Context, text string) {
	p.t.Helper()
	if !poll(ctx, 20*time.Second, func() bool {
		v, _ := Eval[[]string](ctx, p.B, `window.__notices`)
		for _, s := range v {
			if s == text {
				return true
			}
		}
		return false
	}) {
		p.t.Errorf("%s: no notice %q", p.Name, text)
	}
}

// TestUXPeople: alone in a meeting Ann sees "You're the only one here"
// and copies the link; Bob joining and leaving is announced; the count in
// the top bar opens the people in the call with Bob's microphone state
// and "Message privately". Ann is on a phone, Bob on a desktop.
func TestUXPeople(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "ux-people"
	ann := startSized(t, ctx, "Ann", 390, 844)
	tctx, cancel := context.WithTimeout(ann.B.Context(), 20*time.Second)
	defer cancel()
	// The page counts as focused, and may write and read the clipboard.
	if _, err := chromedp.Call(tctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.Call(tctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: "granted", Origin: srv.URL,
		}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	ann.joinAs(ctx, srv, room, "Ann")
	ann.waitVisible(ctx, "alone", true)
	if why := ann.hitTest(ctx, "alone-copy"); why != "" {
		t.Errorf("Ann: Copy link not clickable: %s", why)
	}
	ann.checkControls(ctx, "alone")
	ann.shot(ctx, "alone")
	if err := ann.B.Click(ctx, `[data-testid="alone-copy"]`); err != nil {
		t.Fatal(err)
	}
	want := srv.URL + "/r/" + room
	if !poll(ctx, 10*time.Second, func() bool {
		v, _ := Eval[string](ctx, ann.B, `navigator.clipboard.readText()`)
		return v == want
	}) {
		v, err := Eval[string](ctx, ann.B, `navigator.clipboard.readText()`)
		t.Errorf("Ann: clipboard %q (%v) after Copy link, want %q", v, err, want)
	}

	ann.recordNotices(ctx)
	bob := startSized(t, ctx, "Bob", 1280, 800)
	bob.joinAs(ctx, srv, room, "Bob")
	ann.noticeSeen(ctx, "Bob joined")
	ann.waitVisible(ctx, "alone", false)
	bob.waitVisible(ctx, "alone", false)

	if err := ann.B.Click(ctx, `[data-testid="participant-count"]`); err != nil {
		t.Fatal(err)
	}
	ann.waitVisible(ctx, "people", true)
	ann.checkControls(ctx, "people list")
	// Connection quality (connection_quality): the server's level for
	// Bob shows on his entry. On loopback it is excellent, or good when
	// a loaded machine adds jitter.
	var quality string
	if !poll(ctx, 15*time.Second, func() bool {
		quality, _ = Eval[string](ctx, ann.B, `(() => {
			const p = [...document.querySelectorAll('[data-testid="person"]')].find(e => e.querySelector('[data-testid="person-name"]').textContent === 'Bob');
			const q = p && p.querySelector('[data-testid="person-quality"]');
			return q ? q.getAttribute('aria-label') : '';
		})()`)
		return quality == "Connection excellent" || quality == "Connection good"
	}) {
		t.Errorf("Ann: Bob's connection quality in the people list is %q, want excellent or good", quality)
	}
	label, _ := Eval[string](ctx, ann.B, `(() => {
		const p = [...document.querySelectorAll('[data-testid="person"]')].find(e => e.querySelector('[data-testid="person-name"]').textContent === 'Bob');
		const b = p && p.querySelector('[data-testid="person-message"]');
		return b && b.offsetParent !== null ? b.getAttribute('aria-label') : '';
	})()`)
	if label != "Message Bob privately" {
		t.Errorf("Ann: Bob's Message button says %q", label)
	}
	if err := bob.B.Click(ctx, `[data-testid="mic-toggle"]`); err != nil {
		t.Fatal(err)
	}
	if !poll(ctx, 15*time.Second, func() bool {
		v, _ := Eval[string](ctx, ann.B, `(() => {
			const p = [...document.querySelectorAll('[data-testid="person"]')].find(e => e.querySelector('[data-testid="person-name"]').textContent === 'Bob');
			return p ? p.dataset.micMuted : '';
		})()`)
		return v == "true"
	}) {
		t.Errorf("Ann: the people list does not show Bob's microphone off")
	}
	ann.shot(ctx, "people")

	if err := bob.B.Click(ctx, `[data-testid="leave-button"]`); err != nil {
		t.Fatal(err)
	}
	ann.noticeSeen(ctx, "Bob left")
	ann.waitVisible(ctx, "alone", true)
}
