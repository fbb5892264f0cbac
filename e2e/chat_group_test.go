package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestChatGroup: typing several identities into "new chat" makes a group;
// its members see it appear (without reloading) titled with their names,
// and messages reach everyone in order.
func TestChatGroup(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	ann := openChatPage(t, ctx, srv, "ann", "Ann", BrowserOptions{})
	bob := openChatPage(t, ctx, srv, "bob", "Bob", BrowserOptions{})
	carol := openChatPage(t, ctx, srv, "carol", "Carol", BrowserOptions{})

	tctx, cancel := context.WithTimeout(ann.B.Context(), 20*time.Second)
	err := chromedp.Do(tctx,
		chromedp.SendKeys(`[data-testid="new-chat-input"]`, "bob, carol", chromedp.NodeVisible),
		chromedp.Click(`[data-testid="new-chat-button"]`, chromedp.NodeVisible))
	cancel()
	if err != nil {
		t.Fatalf("Ann: new group: %v", err)
	}
	var convID string
	ann.waitChat(ctx, chatLimit, "with the group open", func(s chatState) bool {
		for _, c := range s.Conversations {
			if c.Kind == "group" {
				convID = c.ID
				return c.Title == "Ann, bob, carol"
			}
		}
		return false
	})
	ann.typeAndSend(ctx, "hello team")
	for _, p := range []*participant{bob, carol} {
		p.waitChat(ctx, chatLimit, "with the new group and Ann's message", func(s chatState) bool {
			c := s.conv(convID)
			return c != nil && c.Kind == "group" && slices.Equal(c.texts(), []string{"hello team"})
		})
	}
	bob.openConversation(ctx, convID)
	bob.typeAndSend(ctx, "hi all")
	want := []string{"hello team", "hi all"}
	carol.openConversation(ctx, convID)
	for _, p := range []*participant{ann, bob, carol} {
		p.waitChat(ctx, chatLimit, "with both messages", func(s chatState) bool {
			return slices.Equal(s.conv(convID).texts(), want)
		})
		if got := p.waitDOMTexts(ctx, chatLimit, want); !slices.Equal(got, want) {
			t.Errorf("%s: the page shows %q, want %q", p.Name, got, want)
		}
	}
	carol.shot(ctx, "group")
}
