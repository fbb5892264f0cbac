package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
)

// TestUXTileMenuKeys: a tile's "⋯" menu follows the ARIA menu pattern.
// Down on its button opens it at the first item (Up: at the last); Down
// and Up move between Pin and Fullscreen, wrapping around; Home and End
// jump to the ends; Escape closes it and gives focus back to the button.
func TestUXTileMenuKeys(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	ann := startSized(t, ctx, "Ann", 1280, 800)
	ann.joinAs(ctx, srv, "ux-menu", "Ann")
	bob := startSized(t, ctx, "Bob", 1280, 800)
	bob.joinAs(ctx, srv, "ux-menu", "Bob")
	waitSeesOthers(ctx, ann, bob)

	tile := `[data-testid="tile"][aria-label="Bob"]`
	focused := func() string {
		v, err := Eval[string](ctx, ann.B, fmt.Sprintf(`(() => {
			const a = document.activeElement;
			return a && a.closest(%q) ? a.dataset.testid || a.tagName : 'outside: ' + (a ? a.tagName : 'none');
		})()`, tile))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, err := Eval[bool](ctx, ann.B, fmt.Sprintf(`(document.querySelector(%q).focus(), true)`, tile+` [data-testid="tile-menu"]`)); err != nil {
		t.Fatal(err)
	}
	role, _ := Eval[string](ctx, ann.B, fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-haspopup')`, tile+` [data-testid="tile-menu"]`))
	if role != "menu" {
		t.Errorf("Ann: tile menu button aria-haspopup %q, want menu", role)
	}
	steps := []struct{ key, want string }{
		{kb.ArrowDown, "tile-pin"}, // opens the menu at its first item
		{kb.ArrowDown, "tile-fullscreen"},
		{kb.ArrowDown, "tile-pin"}, // wraps around
		{kb.ArrowUp, "tile-fullscreen"},
		{kb.Home, "tile-pin"},
		{kb.End, "tile-fullscreen"},
	}
	for i, s := range steps {
		ann.key(ctx, s.key)
		var got string
		if !poll(ctx, 5*time.Second, func() bool { got = focused(); return got == s.want }) {
			t.Fatalf("Ann: after key %d (%q) the focus is on %q, want %q", i, s.key, got, s.want)
		}
	}
	panelShown := func() bool {
		v, _ := Eval[bool](ctx, ann.B, fmt.Sprintf(`!document.querySelector(%q).hidden`, tile+` [data-testid="tile-menu-panel"]`))
		return v
	}
	if !panelShown() {
		t.Error("Ann: Bob's tile menu is not shown while its items have the focus")
	}
	items, _ := Eval[[]string](ctx, ann.B, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.getAttribute('role'))`, tile+` [role="menu"] > *`))
	if len(items) != 2 || items[0] != "menuitemcheckbox" || items[1] != "menuitem" {
		t.Errorf("Ann: menu items with roles %q, want menuitemcheckbox and menuitem", items)
	}
	ann.shot(ctx, "tile-menu-keys")
	ann.key(ctx, kb.Escape)
	if !poll(ctx, 5*time.Second, func() bool { return !panelShown() }) {
		t.Error("Ann: Escape did not close Bob's tile menu")
	}
	if got := focused(); got != "tile-menu" {
		t.Errorf("Ann: focus on %q after Escape, want the menu's button", got)
	}
	// Up on the closed menu's button opens it at the last item.
	ann.key(ctx, kb.ArrowUp)
	if !poll(ctx, 5*time.Second, func() bool { return focused() == "tile-fullscreen" }) {
		t.Errorf("Ann: Up on the button focused %q, want tile-fullscreen", focused())
	}
}

// TestUXAccessibilityDetails runs the axe-core scan (TestUXAccessibility)
// on what only shows with content: a call whose chat holds a message with
// a link, its reactions and their open picker, and an open tile menu.
func TestUXAccessibilityDetails(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	p := startSized(t, ctx, "Ida", 1280, 800)
	p.joinAs(ctx, srv, "ux-a11y-details", "Ida")
	if !visible(ctx, p, "chat-panel") {
		if err := p.B.Click(ctx, `[data-testid="chat-toggle"]`); err != nil {
			t.Fatal(err)
		}
	}
	p.waitVisible(ctx, "composer-input", true)
	p.typeAndSend(ctx, "notes at https://example.com/notes")
	p.waitJS(ctx, "showing the stored message", `!!document.querySelector('[data-testid="message"] [data-testid="reaction-add"]')`)
	if err := p.B.Click(ctx, `[data-testid="message"] [data-testid="reaction-add"]`); err != nil {
		t.Fatal(err)
	}
	if err := p.B.Click(ctx, `[data-testid="reaction-pick"][data-emoji="👍"]`); err != nil {
		t.Fatal(err)
	}
	p.waitJS(ctx, "showing the reaction", `!!document.querySelector('[data-testid="reaction"][data-emoji="👍"]')`)
	if err := p.B.Click(ctx, `[data-testid="message"] [data-testid="reaction-add"]`); err != nil {
		t.Fatal(err)
	}
	p.assertAccessible(ctx, "chat with a link, a reaction and the picker")
	if err := p.B.Click(ctx, `[data-testid="tile"] [data-testid="tile-menu"]`); err != nil {
		t.Fatal(err)
	}
	p.waitJS(ctx, "showing the tile menu", `[...document.querySelectorAll('[data-testid="tile-menu-panel"]')].some(e => !e.hidden)`)
	p.assertAccessible(ctx, "call with a tile menu open")
}
