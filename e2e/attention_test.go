package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// backgroundable makes p's pages report themselves hidden while
// window.__hidden is true (as when the user switches to another tab; a
// headless tab never is) and records the browser notifications shown
// (still through the real Notification API) in window.__notes.
func backgroundable(t *testing.T, p *participant) {
	t.Helper()
	tctx, cancel := context.WithTimeout(p.B.Context(), 10*time.Second)
	defer cancel()
	const script = `(() => {
		Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => window.__hidden ? 'hidden' : 'visible' });
		Object.defineProperty(document, 'hidden', { configurable: true, get: () => !!window.__hidden });
		window.__notes = [];
		const Real = window.Notification;
		if (Real) window.Notification = class extends Real {
			constructor(title, opts) { super(title, opts); window.__notes.push(title + ' | ' + ((opts && opts.body) || '')); }
		};
	})();`
	if _, err := chromedp.Call(tctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		t.Fatal(err)
	}
}

func (p *participant) setHidden(ctx context.Context, hidden bool) {
	p.t.Helper()
	js := `window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); true`
	if hidden {
		js = `window.__hidden = true; document.dispatchEvent(new Event('visibilitychange')); true`
	}
	if _, err := Eval[bool](ctx, p.B, js); err != nil {
		p.t.Fatal(err)
	}
}

func (p *participant) waitNote(ctx context.Context, want string) {
	p.t.Helper()
	var notes []string
	if !poll(ctx, 20*time.Second, func() bool {
		notes, _ = Eval[[]string](ctx, p.B, `window.__notes`)
		for _, n := range notes {
			if strings.Contains(n, want) {
				return true
			}
		}
		return false
	}) {
		p.t.Errorf("%s: no notification with %q; shown: %q", p.Name, want, notes)
	}
}

// TestUXBackgroundTab: Lou enables notifications with the button (no
// prompt on load), puts the tab in the background, and gets Kim's
// message as a notification and an unread count in the tab title, then
// Kim's call as a notification; the ring tone the browser blocked
// (Lou never touched the page) offers "Click to enable ringing", which
// starts it; the dialog keeps Tab inside it.
func TestUXBackgroundTab(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	kim := openChatPage(t, ctx, srv, "kim", "Kim", BrowserOptions{})
	lou := startBrowser(t, ctx, "Lou")
	backgroundable(t, lou)
	if err := lou.B.Navigate(ctx, srv.URL+"/chat#token="+mintToken(t, "lou", "Lou", "", chatOnly)); err != nil {
		t.Fatal(err)
	}
	lou.waitChat(ctx, 20*time.Second, "online", func(s chatState) bool { return s.Status == "online" })
	if perm, _ := Eval[string](ctx, lou.B, `Notification.permission`); perm != "default" {
		t.Fatalf("Lou: notification permission %q on load, want it not asked (default)", perm)
	}
	lou.waitVisible(ctx, "notify-enable", true)
	lou.shot(ctx, "notify-button")
	// The browser's prompt is answered "Allow" (headless shows none).
	tctx, cancel := context.WithTimeout(lou.B.Context(), 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(tctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: "granted", Origin: srv.URL,
	}); err != nil {
		t.Fatal(err)
	}
	// The button is not clicked here: a click is a gesture that would also
	// let the ring tone play, and the blocked tone is checked below.
	if _, err := Eval[string](ctx, lou.B, `document.querySelector('[data-testid="notify-enable"]').click(), 'ok'`); err != nil {
		t.Fatal(err)
	}
	lou.waitVisible(ctx, "notify-enable", false)
	lou.setHidden(ctx, true)

	conv := kim.openDirect(ctx, "lou")
	kim.typeAndSend(ctx, "are you there, Lou?")
	lou.waitNote(ctx, "Kim | New message")
	if !poll(ctx, 10*time.Second, func() bool {
		v, _ := Eval[string](ctx, lou.B, `document.title`)
		return v == "(1) Parley"
	}) {
		v, _ := Eval[string](ctx, lou.B, `document.title`)
		t.Errorf("Lou: tab title %q while hidden with one unread message, want \"(1) Parley\"", v)
	}

	kim.waitChat(ctx, chatLimit, "seeing Lou online", func(s chatState) bool { return s.Presence["lou"] == "online" })
	kim.openConversation(ctx, conv)
	if err := kim.B.Click(ctx, `[data-testid="call-button"]`); err != nil {
		t.Fatal(err)
	}
	lou.waitNote(ctx, "Kim is calling")
	lou.setHidden(ctx, false)
	if v, _ := Eval[string](ctx, lou.B, `document.title`); v != "Parley" {
		t.Errorf("Lou: tab title %q back in the foreground, want Parley", v)
	}
	lou.waitVisible(ctx, "incoming-call", true)
	lou.waitVisible(ctx, "ring-enable", true)
	lou.shot(ctx, "ring-blocked")
	if err := lou.B.Click(ctx, `[data-testid="ring-enable"]`); err != nil {
		t.Fatal(err)
	}
	lou.waitChat(ctx, chatLimit, "ringing audibly", func(s chatState) bool { return s.Calls != nil && s.Calls.Tone == "playing" })
	lou.waitVisible(ctx, "ring-enable", false)

	// The dialog holds the keyboard: Tab cycles inside it.
	for i := 0; i < 4; i++ {
		lou.key(ctx, "\t")
		in, _ := Eval[bool](ctx, lou.B, `document.querySelector('[data-testid="incoming-call"]').contains(document.activeElement)`)
		if !in {
			f, _ := Eval[string](ctx, lou.B, `document.activeElement ? document.activeElement.outerHTML.slice(0, 80) : ''`)
			t.Fatalf("Lou: Tab %d left the incoming-call dialog for %s", i+1, f)
		}
	}
}
