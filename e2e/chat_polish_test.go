package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// msgLink is one link a message shows.
type msgLink struct {
	Href   string `json:"href"`
	Text   string `json:"text"`
	Target string `json:"target"`
	Rel    string `json:"rel"`
}

// TestChatPolish walks the chat details of issue #13 on /chat: links in
// a message are clickable and safe, the composer grows with its text and
// shrinks after sending, the call notice stays clear of the composer, call
// entries read from the viewer's side in the list, and a group chat has
// a Call button that rings its members.
func TestChatPolish(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	ivy := openChatPage(t, ctx, srv, "ivy", "Ivy", BrowserOptions{})
	jon := openChatPage(t, ctx, srv, "jon", "Jon", BrowserOptions{})
	convID := jon.openDirect(ctx, "ivy")

	// Links: http(s) only, built as elements (the markup stays text).
	jon.typeAndSend(ctx, `docs at https://example.com/a?b=1. not javascript:alert(1) <b>bold</b>`)
	ivy.openConversation(ctx, convID)
	var links []msgLink
	if !poll(ctx, chatLimit, func() bool {
		var err error
		links, err = Eval[[]msgLink](ctx, ivy.B, `[...document.querySelectorAll('[data-testid="message-text"] a')].map(a => ({href: a.href, text: a.textContent, target: a.target, rel: a.rel}))`)
		return err == nil && len(links) > 0
	}) {
		t.Fatal("Ivy: no link shown in Jon's message")
	}
	want := msgLink{Href: "https://example.com/a?b=1", Text: "https://example.com/a?b=1", Target: "_blank", Rel: "noopener noreferrer"}
	if len(links) != 1 || links[0] != want {
		t.Errorf("Ivy: links %+v, want just %+v", links, want)
	}
	if n, _ := Eval[int](ctx, ivy.B, `document.querySelectorAll('[data-testid="message-text"] b, [data-testid="message-text"] script').length`); n != 0 {
		t.Errorf("Ivy: %d elements made from the message's markup", n)
	}
	if text, _ := Eval[string](ctx, ivy.B, `document.querySelector('[data-testid="message"][data-kind="text"] [data-testid="message-text"]').textContent`); !strings.Contains(text, "<b>bold</b>") {
		t.Errorf("Ivy: message shown as %q, want the markup as text", text)
	}

	// The composer grows with its lines, up to a limit, and shrinks
	// back once the message is sent.
	height := func() int {
		h, err := Eval[int](ctx, ivy.B, `document.querySelector('[data-testid="composer-input"]').offsetHeight`)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	fill := func(lines int) {
		js := fmt.Sprintf(`(() => { const i = document.querySelector('[data-testid="composer-input"]'); i.focus(); i.value = Array.from({length: %d}, (_, n) => 'line ' + n).join('\n'); i.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, lines)
		if _, err := Eval[bool](ctx, ivy.B, js); err != nil {
			t.Fatal(err)
		}
	}
	one := height()
	fill(4)
	four := height()
	if four < one+30 {
		t.Errorf("composer %d px tall with 4 lines, %d px with one: it does not grow", four, one)
	}
	fill(40)
	if h := height(); h > 130 || h < four {
		t.Errorf("composer %d px tall with 40 lines, want between %d and the 130 px limit", h, four)
	}
	ivy.shot(ctx, "composer-grown")
	fill(4)
	if err := ivy.B.Click(ctx, `[data-testid="composer-send"]`); err != nil {
		t.Fatal(err)
	}
	if !poll(ctx, chatLimit, func() bool { return height() == one }) {
		t.Errorf("composer %d px tall after sending, want %d again", height(), one)
	}

	// The notice of a declined call does not cover the composer.
	if err := ivy.B.Click(ctx, `[data-testid="call-button"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitVisible(ctx, "incoming-call", true)
	if err := jon.B.Click(ctx, `[data-testid="call-decline"]`); err != nil {
		t.Fatal(err)
	}
	ivy.waitVisible(ctx, "call-notice", true)
	overlap, err := Eval[bool](ctx, ivy.B, `(() => {
		const a = document.querySelector('[data-testid="call-notice"]').getBoundingClientRect();
		const b = document.querySelector('[data-testid="composer"]').getBoundingClientRect();
		return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
	})()`)
	if err != nil || overlap {
		t.Errorf("Ivy: the call notice covers the composer (err %v)", err)
	}
	ivy.shot(ctx, "declined-notice")

	// Call entries in the list read from the viewer's side.
	previewOf := func(p *participant, want string) {
		t.Helper()
		var got string
		if !poll(ctx, chatLimit, func() bool {
			got, _ = Eval[string](ctx, p.B, fmt.Sprintf(`(document.querySelector('[data-testid="conv-item"][data-conversation=%q] .conv-preview') || {}).textContent || ''`, convID))
			return got == want
		}) {
			t.Errorf("%s: conversation preview %q, want %q", p.Name, got, want)
		}
	}
	previewOf(ivy, "Jon declined your call")
	previewOf(jon, "You declined a call from Ivy")

	// A group chat has a Call button that rings its members.
	tctx, cancel := context.WithTimeout(ivy.B.Context(), 20*time.Second)
	err = chromedp.Do(tctx,
		chromedp.SendKeys(`[data-testid="new-chat-input"]`, "Jon,", chromedp.NodeVisible),
		chromedp.Click(`[data-testid="new-chat-button"]`, chromedp.NodeVisible))
	cancel()
	if err != nil {
		t.Fatalf("Ivy: new group: %v", err)
	}
	ivy.waitChat(ctx, chatLimit, "with the group open", func(s chatState) bool {
		for _, c := range s.Conversations {
			if c.Kind == "group" {
				return c.Title == "Ivy, Jon"
			}
		}
		return false
	})
	ivy.waitVisible(ctx, "call-button", true)
	if err := ivy.B.Click(ctx, `[data-testid="call-button"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitVisible(ctx, "incoming-call", true)
	if who, _ := Eval[string](ctx, jon.B, `document.querySelector('[data-testid="incoming-caller"]').textContent`); who != "Ivy" {
		t.Errorf("Jon: group call from %q, want Ivy", who)
	}
	if err := jon.B.Click(ctx, `[data-testid="call-decline"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitVisible(ctx, "incoming-call", false)
}

// TestChatFromLanding: in dev mode the start page's "Your chats" opens
// /chat with a guest token of its own, no chat link needed.
func TestChatFromLanding(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	srv := startServer(t)
	b, err := StartBrowser(context.Background(), "Kim", BrowserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: "Kim", B: b}
	t.Cleanup(func() { p.finish(ctx) })
	if err := b.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(ctx, `[data-testid="landing-chats"]`); err != nil {
		t.Fatal(err)
	}
	st := p.waitChat(ctx, 20*time.Second, "online on /chat", func(s chatState) bool { return s.Status == "online" })
	if st.Self == nil || !strings.HasPrefix(st.Self.Identity, "guest-") {
		t.Errorf("Kim: /chat as %+v, want a guest identity", st.Self)
	}
	if path, _ := Eval[string](ctx, b, `window.location.pathname`); path != "/chat" {
		t.Errorf("Kim: at %q, want /chat", path)
	}
	p.shot(ctx, "chats")
}

// TestChatReactions: Ivy reacts to Jon's message with 🎉 from the picker;
// Jon sees it and adds his own by clicking it; after a reload Ivy still
// sees both (the reactions are stored), and taking hers back leaves Jon's.
func TestChatReactions(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	ivy := openChatPage(t, ctx, srv, "ivy", "Ivy", BrowserOptions{})
	jon := openChatPage(t, ctx, srv, "jon", "Jon", BrowserOptions{})
	convID := jon.openDirect(ctx, "ivy")
	jon.typeAndSend(ctx, "lunch at noon?")
	ivy.openConversation(ctx, convID)
	msg := `[data-testid="message"][data-kind="text"][data-seq="1"]`
	chips := func(p *participant) string {
		v, _ := Eval[string](ctx, p.B, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(b => b.textContent + (b.getAttribute('aria-pressed') === 'true' ? '*' : '')).join(',')`, msg+` [data-testid="reaction"]`))
		return v
	}
	waitChips := func(p *participant, want string) {
		t.Helper()
		var got string
		if !poll(ctx, chatLimit, func() bool { got = chips(p); return got == want }) {
			t.Fatalf("%s: reactions %q, want %q", p.Name, got, want)
		}
	}
	ivy.waitJS(ctx, "showing Jon's message", fmt.Sprintf(`!!document.querySelector(%q)`, msg+` [data-testid="reaction-add"]`))
	if err := ivy.B.Click(ctx, msg+` [data-testid="reaction-add"]`); err != nil {
		t.Fatal(err)
	}
	if err := ivy.B.Click(ctx, msg+` [data-testid="reaction-pick"][data-emoji="🎉"]`); err != nil {
		t.Fatal(err)
	}
	waitChips(ivy, "🎉 1*")
	waitChips(jon, "🎉 1")
	if err := jon.B.Click(ctx, msg+` [data-testid="reaction"][data-emoji="🎉"]`); err != nil {
		t.Fatal(err)
	}
	waitChips(jon, "🎉 2*")
	waitChips(ivy, "🎉 2*")
	ivy.shot(ctx, "reactions")

	// Stored: a reload shows them again.
	if _, err := Eval[bool](ctx, ivy.B, `(location.reload(), true)`); err != nil {
		t.Fatal(err)
	}
	ivy.waitChat(ctx, 20*time.Second, "online after the reload", func(s chatState) bool { return s.Status == "online" && s.conv(convID) != nil })
	ivy.openConversation(ctx, convID)
	waitChips(ivy, "🎉 2*")
	if err := ivy.B.Click(ctx, msg+` [data-testid="reaction"][data-emoji="🎉"]`); err != nil {
		t.Fatal(err)
	}
	waitChips(ivy, "🎉 1")
	waitChips(jon, "🎉 1*")
}
