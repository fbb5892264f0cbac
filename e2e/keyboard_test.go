package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// key presses one key (down and up) in p's page.
func (p *participant) key(ctx context.Context, k string) {
	p.t.Helper()
	tctx, cancel := context.WithTimeout(p.B.Context(), 10*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.KeyEvent(k)); err != nil {
		p.t.Fatal(err)
	}
}

// space sends a Space key down or up (held between the two).
func (p *participant) space(ctx context.Context, down bool) {
	p.t.Helper()
	tctx, cancel := context.WithTimeout(p.B.Context(), 10*time.Second)
	defer cancel()
	ev := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: " ", Code: "Space", WindowsVirtualKeyCode: 32, NativeVirtualKeyCode: 32}
	if down {
		ev.Type = input.DispatchKeyEventTypeKeyDown
		ev.Text = " "
	}
	if _, err := chromedp.Call(tctx, input.DispatchKeyEvent, ev); err != nil {
		p.t.Fatal(err)
	}
}

func (p *participant) localOn(ctx context.Context, source string) bool {
	p.t.Helper()
	v, err := Eval[bool](ctx, p.B, `(() => { const d = window.parley.state().local.`+source+`; return !!(d && d.enabled); })()`)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

func (p *participant) waitLocal(ctx context.Context, source string, on bool, what string) {
	p.t.Helper()
	if !poll(ctx, 5*time.Second, func() bool { return p.localOn(ctx, source) == on }) {
		p.t.Errorf("%s: %s: %s enabled != %v", p.Name, what, source, on)
	}
}

// TestUXKeyboard: M and V toggle microphone and camera, Space held while
// muted talks, a key typed into the chat is text and no shortcut, Escape
// closes the devices panel and the layout menu and gives focus back to
// their buttons (the incoming-call dialog's focus trap is in
// TestUXBackgroundTab).
func TestUXKeyboard(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	p := startSized(t, ctx, "Kai", 1280, 800)
	p.joinAs(ctx, srv, "ux-keys", "Kai")
	// Focus on the page, not in a field.
	if _, err := Eval[bool](ctx, p.B, `document.activeElement && document.activeElement.blur && document.activeElement.blur(), true`); err != nil {
		t.Fatal(err)
	}
	p.key(ctx, "m")
	p.waitLocal(ctx, "microphone", false, "after M")
	p.key(ctx, "v")
	p.waitLocal(ctx, "camera", false, "after V")
	p.key(ctx, "v")
	p.waitLocal(ctx, "camera", true, "after V again")

	p.space(ctx, true)
	p.waitLocal(ctx, "microphone", true, "Space held while muted")
	p.space(ctx, false)
	p.waitLocal(ctx, "microphone", false, "Space released")
	p.key(ctx, "m")
	p.waitLocal(ctx, "microphone", true, "after M again")

	// Typing in the composer is text.
	p.waitVisible(ctx, "composer-input", true)
	tctx, cancel := context.WithTimeout(p.B.Context(), 10*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="composer-input"]`), "mv m"), chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if !p.localOn(ctx, "microphone") || !p.localOn(ctx, "camera") {
		t.Errorf("Kai: typing \"mv m\" in the chat toggled the microphone or camera")
	}
	// Escape with text in the composer keeps the panel open.
	p.key(ctx, "\x1b")
	if !visible(ctx, p, "chat-panel") {
		t.Errorf("Kai: Escape while writing closed the chat panel")
	}

	for _, c := range []struct{ button, panel string }{{"devices-toggle", "devices-panel"}, {"layout-toggle", "layout-menu"}} {
		if err := p.B.Click(ctx, `[data-testid="`+c.button+`"]`); err != nil {
			t.Fatal(err)
		}
		p.waitVisible(ctx, c.panel, true)
		p.key(ctx, "\x1b")
		p.waitVisible(ctx, c.panel, false)
		if f, _ := Eval[string](ctx, p.B, `document.activeElement ? document.activeElement.dataset.testid || '' : ''`); f != c.button {
			t.Errorf("Kai: focus on %q after Escape closed %s, want %s", f, c.panel, c.button)
		}
	}
	// Every control in the call has an accessible name (axe checks the
	// rest): here the footer at its icon-only phone width.
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	unnamed, _ := Eval[[]string](ctx, p.B, `[...document.querySelectorAll('[data-testid="controls"] button')].filter(b => !b.hidden && !(b.getAttribute('aria-label') || b.textContent.trim())).map(b => b.id)`)
	if len(unnamed) > 0 {
		t.Errorf("Kai: controls without a name: %v", unnamed)
	}
}
