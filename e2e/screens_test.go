package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screensDir is where TestUXScreens writes: $PARLEY_SCREENSHOTS (relative
// to the repository, e.g. docs/screens for the README) when set, else the
// ignored testdata/out, so a normal run leaves the tree clean.
func screensDir() string {
	d := os.Getenv("PARLEY_SCREENSHOTS")
	if d == "" {
		return filepath.Join(outDir, "screens")
	}
	if filepath.IsAbs(d) {
		return d
	}
	return filepath.Join("..", d)
}

// screen saves p's page as dir/<name>-<size>.png.
func (p *participant) screen(ctx context.Context, name, size string) {
	p.t.Helper()
	// Let videos and fonts settle.
	time.Sleep(700 * time.Millisecond)
	if _, err := p.B.Screenshot(ctx, screensDir(), name+"-"+size); err != nil {
		p.t.Fatal(err)
	}
}

// TestUXScreens takes the README's screenshots of each main screen at
// desktop and phone size: landing, pre-join, alone in a call, a call,
// the chat beside it (with a link and a reaction), a shared screen on stage and /chat. Each screen is
// also checked: Leave and Chat clickable in the call, no sideways
// overflow anywhere.
func TestUXScreens(t *testing.T) {
	// Two sizes, three browsers each, on a shared 2-core machine.
	ctx := testContext(t, 9*time.Minute)
	srv := startServer(t)
	for _, size := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		t.Run(size.name, func(t *testing.T) {
			room := "design-review"
			if size.name == "phone" {
				room = "design-review-phone"
			}
			ada := startSized(t, ctx, "Ada", size.w, size.h)
			noOverflow := func(what string) {
				t.Helper()
				if o := ada.overflow(ctx); o != "" {
					t.Errorf("%s %s: horizontal overflow: %s", size.name, what, o)
				}
			}
			if err := ada.B.Navigate(ctx, srv.URL+"/"); err != nil {
				t.Fatal(err)
			}
			ada.waitVisible(ctx, "landing", true)
			noOverflow("landing")
			ada.screen(ctx, "landing", size.name)

			if err := ada.B.Navigate(ctx, srv.URL+"/r/"+room); err != nil {
				t.Fatal(err)
			}
			ada.waitVisible(ctx, "prejoin", true)
			tctx, cancel := context.WithTimeout(ada.B.Context(), 20*time.Second)
			defer cancel()
			if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="prejoin-name"]`), "Ada", chromedp.NodeVisible)); err != nil {
				t.Fatal(err)
			}
			poll(ctx, 10*time.Second, func() bool {
				v, _ := Eval[bool](ctx, ada.B, `document.querySelector('[data-testid="prejoin-preview"]').videoWidth > 0`)
				return v
			})
			noOverflow("pre-join")
			ada.screen(ctx, "prejoin", size.name)
			if err := ada.B.Click(ctx, `[data-testid="prejoin-join"]`); err != nil {
				t.Fatal(err)
			}
			ada.waitState(ctx, 30*time.Second, "joined", func(s clientState) bool { return s.Status == "connected" && s.Publisher == "connected" })
			if visible(ctx, ada, "chat-panel") {
				if err := ada.B.Click(ctx, `[data-testid="chat-close"]`); err != nil {
					t.Fatal(err)
				}
			}
			ada.waitVisible(ctx, "alone", true)
			ada.checkControls(ctx, "alone")
			ada.screen(ctx, "call-alone", size.name)

			others := []*participant{}
			for _, name := range []string{"Grace", "Linus"} {
				o := startSized(t, ctx, name, 1280, 800)
				o.joinAs(ctx, srv, room, name)
				others = append(others, o)
			}
			ada.waitState(ctx, 20*time.Second, "seeing the others", func(s clientState) bool { return len(s.Participants) == 2 })
			waitSeesOthers(ctx, ada, others...)
			ada.checkControls(ctx, "call")
			ada.screen(ctx, "call", size.name)

			others[0].typeAndSend(ctx, "Shall we start with the login page?")
			if err := ada.B.Click(ctx, `[data-testid="chat-toggle"]`); err != nil {
				t.Fatal(err)
			}
			ada.waitVisible(ctx, "composer-input", true)
			// A link and a reaction, as a chat looks in use.
			others[1].typeAndSend(ctx, "Mockups: https://example.com/v2")
			first := `[data-testid="message"][data-kind="text"]`
			ada.waitJS(ctx, "showing both messages", `document.querySelectorAll('[data-testid="message"][data-kind="text"] [data-testid="reaction-add"]').length === 2`)
			if err := ada.B.Click(ctx, first+` [data-testid="reaction-add"]`); err != nil {
				t.Fatal(err)
			}
			if err := ada.B.Click(ctx, first+` [data-testid="reaction-pick"][data-emoji="👍"]`); err != nil {
				t.Fatal(err)
			}
			ada.waitJS(ctx, "showing her reaction", `!!document.querySelector('[data-testid="reaction"][aria-pressed="true"]')`)
			ada.checkControls(ctx, "chat")
			ada.screen(ctx, "call-chat", size.name)
			if err := ada.B.Click(ctx, `[data-testid="chat-close"]`); err != nil {
				t.Fatal(err)
			}

			if err := others[1].B.Click(ctx, `[data-testid="screen-toggle"]`); err != nil {
				t.Fatal(err)
			}
			ada.waitMain(ctx, "Linus (screen)")
			poll(ctx, 10*time.Second, func() bool {
				v, _ := Eval[bool](ctx, ada.B, `[...document.querySelectorAll('[data-testid="tile"][data-role="main"] video')].every(v => v.videoWidth > 0)`)
				return v
			})
			ada.checkControls(ctx, "stage")
			ada.screen(ctx, "call-stage", size.name)

			chat := openChatPage(t, ctx, srv, fmt.Sprintf("ada-%s", size.name), "Ada", BrowserOptions{})
			tc, cancel2 := context.WithTimeout(chat.B.Context(), 20*time.Second)
			defer cancel2()
			if err := chromedp.Do(tc, chromedp.EmulateViewport(int64(size.w), int64(size.h))); err != nil {
				t.Fatal(err)
			}
			if o := chat.overflow(ctx); o != "" {
				t.Errorf("%s /chat: horizontal overflow: %s", size.name, o)
			}
			chat.screen(ctx, "chat", size.name)
		})
	}
}
