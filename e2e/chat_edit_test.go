package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestChatEditAndDelete: the author edits one message and deletes
// another from the page; the other side sees the new text marked
// "edited" and a tombstone, nobody else gets the buttons, and a device
// that loads the history later sees the same.
func TestChatEditAndDelete(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	ann := openChatPage(t, ctx, srv, "ann", "Ann", BrowserOptions{})
	bob := openChatPage(t, ctx, srv, "bob", "Bob", BrowserOptions{})
	convID := ann.openDirect(ctx, "bob")
	ann.typeAndSend(ctx, "frist draft")
	ann.typeAndSend(ctx, "sent by mistake")
	ann.typeAndSend(ctx, "third")
	st := ann.waitChat(ctx, chatLimit, "with three messages stored", func(s chatState) bool {
		c := s.conv(convID)
		st := statuses(c)
		return slices.Equal(c.texts(), []string{"frist draft", "sent by mistake", "third"}) && len(st) == 3 &&
			!slices.Contains(st, "pending") && !slices.Contains(st, "failed")
	})
	typo, mistake := st.conv(convID).message("frist draft").Seq, st.conv(convID).message("sent by mistake").Seq
	bob.waitChat(ctx, chatLimit, "with Ann's three messages", func(s chatState) bool {
		return len(s.conv(convID).texts()) == 3
	})
	bob.openConversation(ctx, convID)
	ann.waitChat(ctx, chatLimit, "with Bob having read everything", func(s chatState) bool {
		return allEqual(statuses(s.conv(convID)), "read", 3)
	})

	// Edit: the button, the input, Enter.
	msgCSS := func(seq int64) string { return fmt.Sprintf(`[data-testid="message"][data-seq="%d"]`, seq) }
	if err := ann.B.Click(ctx, msgCSS(typo)+` [data-testid="edit-button"]`); err != nil {
		t.Fatal(err)
	}
	input := msgCSS(typo) + ` [data-testid="edit-input"]`
	if ok, err := Eval[bool](ctx, ann.B, fmt.Sprintf(`(() => { const i = document.querySelector(%q); if (!i || i.value !== "frist draft") return false; i.value = ""; return true; })()`, input)); err != nil || !ok {
		t.Fatalf("Ann: the edit box did not open with the old text (%v)", err)
	}
	tctx, cancel := context.WithTimeout(ann.B.Context(), 20*time.Second)
	err := chromedp.Do(tctx, chromedp.SendKeys(input, "first draft"+kb.Enter, chromedp.NodeVisible))
	cancel()
	if err != nil {
		t.Fatalf("Ann: edit: %v", err)
	}
	ann.waitChat(ctx, chatLimit, "with the edit stored", func(s chatState) bool {
		m := s.conv(convID).message("first draft")
		return m != nil && m.Edited
	})
	// Delete: two clicks (the first one asks).
	del := msgCSS(mistake) + ` [data-testid="delete-button"]`
	for range 2 {
		if err := ann.B.Click(ctx, del); err != nil {
			t.Fatal(err)
		}
	}

	want := []string{"first draft", "Message deleted", "third"}
	for _, p := range []*participant{ann, bob} {
		p.waitChat(ctx, chatLimit, "with the edit and the delete", func(s chatState) bool {
			c := s.conv(convID)
			m := c.message("first draft")
			return m != nil && m.Edited && slices.ContainsFunc(c.Messages, func(m chatMsg) bool { return m.Seq == mistake && m.Deleted })
		})
		if got := p.waitDOMTexts(ctx, chatLimit, want); !slices.Equal(got, want) {
			t.Errorf("%s: the page shows %q, want %q", p.Name, got, want)
		}
		p.shot(ctx, "edited-and-deleted")
	}
	if n, _ := Eval[int](ctx, bob.B, `document.querySelectorAll('[data-testid="edit-button"], [data-testid="delete-button"]').length`); n != 0 {
		t.Errorf("Bob sees %d edit/delete buttons on Ann's messages", n)
	}
	if n, _ := Eval[int](ctx, bob.B, `document.querySelectorAll('[data-testid="message-edited"]').length`); n != 1 {
		t.Errorf("Bob sees %d 'edited' marks, want 1", n)
	}

	// Another device of Bob's loads the history: the same picture.
	bob2 := openChatPage(t, ctx, srv, "bob", "Bob", BrowserOptions{})
	bob2.waitChat(ctx, chatLimit, "with the history", func(s chatState) bool {
		return s.conv(convID) != nil && len(s.conv(convID).Messages) == 3
	})
	bob2.openConversation(ctx, convID)
	if got := bob2.waitDOMTexts(ctx, chatLimit, want); !slices.Equal(got, want) {
		t.Errorf("Bob's second device shows %q, want %q", got, want)
	}
}
