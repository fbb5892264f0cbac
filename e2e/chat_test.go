package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// statuses lists the marks of own text messages, in order.
func statuses(c *chatConv) []string {
	var out []string
	if c != nil {
		for _, m := range c.Messages {
			if m.Kind == "text" && m.Own {
				out = append(out, m.Status)
			}
		}
	}
	return out
}

func allEqual(list []string, want string, n int) bool {
	if len(list) != n {
		return false
	}
	for _, s := range list {
		if s != want {
			return false
		}
	}
	return true
}

// seqsContiguous reports whether the text messages carry increasing
// seqs without duplicates (the display order is the server's order).
func seqsAscending(c *chatConv) bool {
	var last int64
	for _, m := range c.Messages {
		if m.Seq == 0 {
			continue // pending
		}
		if m.Seq <= last {
			return false
		}
		last = m.Seq
	}
	return true
}

// TestChatInRoomAndDirect: two people in a call chat in the room's
// conversation and in a direct one, with typing, delivered and read marks.
func TestChatInRoomAndDirect(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "e2e-chat"
	ada := joinWithToken(t, ctx, srv, room, "Ada", mintToken(t, "ada", "Ada", room, callUser), "")
	// Bob's page has the ?debug switch: the gap test drops pushes.
	bob := joinWithToken(t, ctx, srv, room, "Bob", mintToken(t, "bob", "Bob", room, callUser), "?debug=1")
	for _, p := range []*participant{ada, bob} {
		p.waitChat(ctx, chatLimit, "online in the room conversation", func(s chatState) bool {
			return s.Status == "online" && s.RoomConversationID != "" && s.conv(s.RoomConversationID) != nil
		})
	}

	// Room conversation: the panel beside the grid shows it from the start.
	ada.typeAndSend(ctx, "hello from Ada")
	bob.waitChat(ctx, chatLimit, "showing Ada's message", func(s chatState) bool {
		return slices.Equal(s.conv(s.RoomConversationID).texts(), []string{"hello from Ada"})
	})
	bob.typeAndSend(ctx, "hi Ada, Bob here")
	want := []string{"hello from Ada", "hi Ada, Bob here"}
	for _, p := range []*participant{ada, bob} {
		st := p.waitChat(ctx, chatLimit, "showing both room messages in order", func(s chatState) bool {
			c := s.conv(s.RoomConversationID)
			return slices.Equal(c.texts(), want) && seqsAscending(c) && allEqual(statuses(c), "sent", 1)
		})
		if got := p.waitDOMTexts(ctx, chatLimit, want); !slices.Equal(got, want) {
			t.Errorf("%s: the page shows %q, want %q", p.Name, got, want)
		}
		// A message counts as unread for the moment between its arrival
		// and its IndexedDB write; once stored, the open conversation
		// marks it read.
		if c := st.conv(st.RoomConversationID); c.Unread != 0 && !poll(ctx, 3*time.Second, func() bool {
			s, err := p.chat(ctx)
			return err == nil && s.conv(s.RoomConversationID).Unread == 0
		}) {
			t.Errorf("%s: room conversation stays unread (%d) while it is open", p.Name, c.Unread)
		}
		p.shot(ctx, "room-chat")
	}

	// Direct conversation: Ada opens it by identity and writes twice.
	// Bob is still looking at the room, so his list shows 2 unread, and
	// Ada's marks go to delivered (Bob's client stored them), not read.
	convID := ada.openDirect(ctx, "bob")
	ada.typeAndSend(ctx, "psst, Bob")
	ada.typeAndSend(ctx, "are you there?")
	direct := []string{"psst, Bob", "are you there?"}
	bob.waitChat(ctx, chatLimit, "with 2 unread in the direct conversation", func(s chatState) bool {
		c := s.conv(convID)
		return c != nil && c.Unread == 2 && slices.Equal(c.texts(), direct)
	})
	badge, err := Eval[string](ctx, bob.B, fmt.Sprintf(`document.querySelector('[data-testid="conv-item"][data-conversation=%q] [data-testid="unread-badge"]')?.textContent ?? ''`, convID))
	if err != nil || badge != "2" {
		t.Errorf("Bob: unread badge %q (err %v), want 2", badge, err)
	}
	ada.waitChat(ctx, chatLimit, "marks delivered", func(s chatState) bool {
		return allEqual(statuses(s.conv(convID)), "delivered", 2)
	})
	ada.shot(ctx, "direct-delivered")

	// Bob types: Ada sees the indicator.
	bob.openConversation(ctx, convID)
	tctx, cancel := context.WithTimeout(bob.B.Context(), 10*time.Second)
	if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="composer-input"]`), "yes", chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	cancel()
	ada.waitChat(ctx, chatLimit, "showing Bob typing", func(s chatState) bool {
		c := s.conv(convID)
		return c != nil && slices.Contains(c.Typing, "Bob")
	})
	if line, _ := Eval[string](ctx, ada.B, `document.querySelector('[data-testid="typing-indicator"]').textContent`); line != "Bob is typing…" {
		t.Errorf("Ada: typing line %q", line)
	}
	// Bob opened it: read, on both sides.
	bob.waitChat(ctx, chatLimit, "read the direct conversation", func(s chatState) bool {
		c := s.conv(convID)
		return c.Unread == 0 && c.Read == c.LastSeq
	})
	ada.waitChat(ctx, chatLimit, "marks read", func(s chatState) bool {
		return allEqual(statuses(s.conv(convID)), "read", 2)
	})
	bob.typeAndSend(ctx, "!")
	want = []string{"psst, Bob", "are you there?", "yes!"}
	for _, p := range []*participant{ada, bob} {
		p.waitChat(ctx, chatLimit, "showing the direct conversation in order", func(s chatState) bool {
			c := s.conv(convID)
			return slices.Equal(c.texts(), want) && seqsAscending(c)
		})
		if got := p.waitDOMTexts(ctx, chatLimit, want); !slices.Equal(got, want) {
			t.Errorf("%s: the page shows %q, want %q", p.Name, got, want)
		}
		p.shot(ctx, "direct-read")
	}
	// Ada is looking at the conversation, so Bob's reply is read at once.
	bob.waitChat(ctx, chatLimit, "marks read", func(s chatState) bool {
		return allEqual(statuses(s.conv(convID)), "read", 1)
	})

	// Gap refill: Bob's client loses the next two pushes (as when a
	// server drops them for a slow connection); the third one skips
	// ahead, and Bob fetches the missing range. Bob is in the direct
	// conversation, so the three count as unread in the room's.
	before, err := bob.chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Eval[any](ctx, bob.B, `window.parley.debug.dropChatPushes(2)`); err != nil {
		t.Fatal(err)
	}
	ada.openConversation(ctx, before.RoomConversationID)
	for _, m := range []string{"g1", "g2", "g3"} {
		ada.typeAndSend(ctx, m)
	}
	roomWant := []string{"hello from Ada", "hi Ada, Bob here", "g1", "g2", "g3"}
	st := bob.waitChat(ctx, chatLimit, "with the gap filled", func(s chatState) bool {
		c := s.conv(s.RoomConversationID)
		return slices.Equal(c.texts(), roomWant) && seqsAscending(c) && c.Unread == 3
	})
	if st.GapFills <= before.GapFills {
		t.Errorf("Bob: no chat_range was needed (gap fills %d -> %d): the dropped pushes were not dropped", before.GapFills, st.GapFills)
	}
}

// TestChatOfflineCatchUp: a chat-only user misses messages while the page
// is closed and, back, shows them in order with the right unread count; a
// message written while the WebSocket is cut stays pending and is
// delivered once after the reconnect.
func TestChatOfflineCatchUp(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	carol := openChatPage(t, ctx, srv, "carol", "Carol", BrowserOptions{})
	dave := openChatPage(t, ctx, srv, "dave", "Dave", BrowserOptions{})

	convID := carol.openDirect(ctx, "dave")
	carol.typeAndSend(ctx, "m1")
	dave.waitChat(ctx, chatLimit, "with Carol's first message", func(s chatState) bool {
		c := s.conv(convID)
		return c != nil && c.Unread == 1 && slices.Equal(c.texts(), []string{"m1"})
	})
	carol.waitChat(ctx, chatLimit, "seeing Dave online", func(s chatState) bool { return s.Presence["dave"] == "online" })
	dave.openConversation(ctx, convID)
	// Read as far as the server knows (its watermark came back).
	dave.waitChat(ctx, chatLimit, "read m1", func(s chatState) bool { c := s.conv(convID); return c.Unread == 0 && c.Read == 1 })

	// Dave closes the page.
	if err := dave.B.Navigate(ctx, "about:blank"); err != nil {
		t.Fatal(err)
	}
	carol.waitChat(ctx, chatLimit, "seeing Dave offline", func(s chatState) bool { return s.Presence["dave"] == "offline" })
	for _, m := range []string{"m2", "m3", "m4"} {
		carol.typeAndSend(ctx, m)
	}
	carol.waitChat(ctx, chatLimit, "with m2..m4 acknowledged", func(s chatState) bool {
		return allEqual(statuses(s.conv(convID)), "sent", 3) || len(statuses(s.conv(convID))) == 4 && statuses(s.conv(convID))[3] == "sent"
	})

	// Back on /chat (the tab keeps its token for the session): the list
	// shows 3 unread; m1 comes from the local copy, m2..m4 from the sync.
	// ?debug adds the connection cut used below.
	if err := dave.B.Navigate(ctx, srv.URL+"/chat?debug=1"); err != nil {
		t.Fatal(err)
	}
	st := dave.waitChat(ctx, chatLimit, "caught up with 3 unread", func(s chatState) bool {
		c := s.conv(convID)
		return s.Status == "online" && c != nil && c.Unread == 3 && slices.Equal(c.texts(), []string{"m1", "m2", "m3", "m4"}) && seqsAscending(c)
	})
	if !st.Persistent {
		t.Errorf("Dave: chat store is not IndexedDB-backed")
	}
	badge, _ := Eval[string](ctx, dave.B, fmt.Sprintf(`document.querySelector('[data-testid="conv-item"][data-conversation=%q] [data-testid="unread-badge"]')?.textContent ?? ''`, convID))
	if badge != "3" {
		t.Errorf("Dave: unread badge %q, want 3", badge)
	}
	dave.shot(ctx, "unread-after-return")
	dave.openConversation(ctx, convID)
	if got := dave.waitDOMTexts(ctx, chatLimit, []string{"m1", "m2", "m3", "m4"}); !slices.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
		t.Errorf("Dave: page shows %q", got)
	}
	carol.waitChat(ctx, chatLimit, "marks read", func(s chatState) bool {
		return allEqual(statuses(s.conv(convID)), "read", 4)
	})

	// The WebSocket is cut and Dave writes at once: pending, then sent
	// exactly once after the client reconnects by itself.
	if _, err := Eval[any](ctx, dave.B, `window.parley.debug.dropConnection()`); err != nil {
		t.Fatal(err)
	}
	dave.typeAndSend(ctx, "written offline")
	if s, err := dave.chat(ctx); err != nil {
		t.Fatal(err)
	} else if got := statuses(s.conv(convID)); s.Link.Reconnects == 0 {
		// Still offline: the message must show as pending, not sent.
		if !slices.Equal(got, []string{"pending"}) {
			t.Errorf("Dave: marks %q while offline, want [pending]", got)
		}
	} else {
		t.Logf("Dave reconnected within the send (marks %q); pending not observable this time", got)
	}
	dave.waitChat(ctx, 30*time.Second, "reconnected with the message sent", func(s chatState) bool {
		return s.Link.Reconnects >= 1 && s.Status == "online" && slices.Equal(statuses(s.conv(convID)), []string{"read"})
	})
	carol.waitChat(ctx, chatLimit, "with Dave's offline message once", func(s chatState) bool {
		c := s.conv(convID)
		return slices.Equal(c.texts(), []string{"m1", "m2", "m3", "m4", "written offline"}) && seqsAscending(c)
	})
	carol.shot(ctx, "after-reconnect")
}

// TestChatHistoryScrollBack: a newcomer's device shows the newest page
// and loads older pages on demand, in order.
func TestChatHistoryScrollBack(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	gil := openChatPage(t, ctx, srv, "gil", "Gil", BrowserOptions{})
	// Hana has not opened Parley yet; the operator issued her a token, so
	// she can be messaged (docs/protocol.md, "Who can be messaged").
	if code, body := adminDo(t, srv, "POST", "/api/admin/tokens", []byte(`{"identity":"hana","name":"Hana","grants":["chat"]}`)); code != 200 {
		t.Fatalf("issue Hana a token: %d %s", code, body)
	}
	convID := gil.openDirect(ctx, "hana")
	const n = 45
	var want []string
	// Faster than the server's chat write rate (10/s, burst 20): the
	// client retries refused sends with backoff and keeps their order.
	for i := 1; i <= n; i++ {
		msg := fmt.Sprintf("line %02d", i)
		want = append(want, msg)
		if _, err := Eval[any](ctx, gil.B, fmt.Sprintf(`(() => { const i = document.querySelector('[data-testid="composer-input"]'); i.value = %q; document.querySelector('[data-testid="composer-send"]').click(); })()`, msg)); err != nil {
			t.Fatal(err)
		}
	}
	gil.waitChat(ctx, 60*time.Second, "with every line acknowledged in order", func(s chatState) bool {
		c := s.conv(convID)
		return slices.Equal(c.texts(), want) && allEqual(statuses(c), "sent", n) && seqsAscending(c)
	})

	// Hana follows a link to the landing page with her chat-only token.
	hana := openChatPageAt(t, ctx, srv, "/", "hana", "Hana", BrowserOptions{})
	if loc, _ := Eval[string](ctx, hana.B, `location.pathname + location.hash`); loc != "/chat" {
		t.Errorf("Hana: address %q after opening / with a chat-only token, want /chat (token removed)", loc)
	}
	hana.waitChat(ctx, chatLimit, "with the newest page", func(s chatState) bool {
		c := s.conv(convID)
		return c != nil && slices.Equal(c.texts(), want[n-30:]) && c.More && c.Unread == n
	})
	hana.openConversation(ctx, convID)
	if err := hana.B.Click(ctx, `[data-testid="load-older"]`); err != nil {
		t.Fatal(err)
	}
	hana.waitChat(ctx, chatLimit, "with every line after scrolling back", func(s chatState) bool {
		c := s.conv(convID)
		return slices.Equal(c.texts(), want) && !c.More && seqsAscending(c)
	})
	if got := hana.waitDOMTexts(ctx, chatLimit, want); !slices.Equal(got, want) {
		t.Errorf("Hana: page shows %d lines, want %d in order: %q", len(got), n, got)
	}
	hana.shot(ctx, "history")

	// A message the server refuses (4,000 two-byte characters: over the
	// 4 KiB default) is marked failed at once, with a Retry button, and
	// does not block the next one.
	if _, err := Eval[any](ctx, gil.B, `(() => { const i = document.querySelector('[data-testid="composer-input"]'); i.value = 'é'.repeat(4000); document.querySelector('[data-testid="composer-send"]').click(); })()`); err != nil {
		t.Fatal(err)
	}
	gil.typeAndSend(ctx, "after the big one")
	st := gil.waitChat(ctx, chatLimit, "with the oversized message failed", func(s chatState) bool {
		c := s.conv(convID)
		got := statuses(c)
		// Stored messages come first (seq order), then the failed one.
		return len(got) == n+2 && got[n] != "pending" && got[n] != "failed" && got[n+1] == "failed"
	})
	if m := st.conv(convID).Messages; m[len(m)-1].Seq != 0 || m[len(m)-1].Status != "failed" {
		// Failed messages stay after the stored ones, without a seq.
		t.Errorf("Gil: last entry %+v, want the failed message", m[len(m)-1])
	}
	if !visible(ctx, gil, "retry-button") {
		t.Errorf("Gil: no Retry button on the failed message")
	}
	hana.waitChat(ctx, chatLimit, "with the message after the refused one", func(s chatState) bool {
		c := s.conv(convID)
		tx := c.texts()
		return len(tx) == n+1 && tx[n] == "after the big one"
	})
	gil.shot(ctx, "failed")
}

var _ = context.Background
