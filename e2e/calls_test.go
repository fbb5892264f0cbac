package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// ringTimeout is the server's call_ring_timeout in the calls test: short,
// so the unanswered call ends quickly, long enough to see the dialog.
const ringTimeout = 5 * time.Second

func visible(ctx context.Context, p *participant, testid string) bool {
	v, err := Eval[bool](ctx, p.B, `(() => { const e = document.querySelector('[data-testid="`+testid+`"]'); return !!e && !e.hidden && e.getClientRects().length > 0; })()`)
	return err == nil && v
}

func (p *participant) waitVisible(ctx context.Context, testid string, want bool) {
	p.t.Helper()
	if !poll(ctx, chatLimit, func() bool { return visible(ctx, p, testid) == want }) {
		st, _ := p.chat(ctx)
		p.t.Fatalf("%s: %s visible != %v within %v: %s", p.Name, testid, want, chatLimit, describeChat(st))
	}
}

// acceptCall answers the call ringing on p's /chat page with the Accept
// button and waits until the page has left for the call room. A click
// the page never received (the button still enabled, the dialog still
// up: the browser dropped the input, seen once in CI) is clicked again,
// as a person would; a click received with no call room after it is a
// failure, reported with the page's call state.
func (p *participant) acceptCall(ctx context.Context) {
	p.t.Helper()
	const button = `[data-testid="call-accept"]`
	left := func() bool {
		path, err := Eval[string](ctx, p.B, `location.pathname`)
		return err == nil && strings.HasPrefix(path, "/r/")
	}
	for try := 1; ; try++ {
		if err := p.B.Click(ctx, button); err != nil {
			p.t.Fatal(err)
		}
		if poll(ctx, chatLimit, left) {
			return
		}
		received, _ := Eval[bool](ctx, p.B, `(() => { const b = document.querySelector('`+button+`'); return !b || b.disabled || !b.getClientRects().length; })()`)
		st, _ := p.chat(ctx)
		if received || try == 2 {
			p.t.Fatalf("%s: accepted the call (try %d, click received %v) but not in the call room within %v: %s", p.Name, try, received, chatLimit, describeChat(st))
		}
		p.t.Logf("%s: the Accept click did not reach the page; clicking again", p.Name)
	}
}

// TestChatOnlyCalls: on the /chat page Ivy calls Jon three times. The
// first call rings and is declined, the second rings out, the third is
// accepted and both end up in a call room with video. The declined and
// the unanswered call are entries in their conversation on both sides.
func TestChatOnlyCalls(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServerWith(t, map[string]any{"signaling": map[string]any{"call_ring_timeout": ringTimeout.String()}})
	// Jon's browser may play sound without a gesture, so the ring tone
	// really starts (WebAudio) instead of waiting for a click.
	sound := BrowserOptions{ExtraFlags: map[string]string{"autoplay-policy": "no-user-gesture-required"}}
	ivy := openChatPage(t, ctx, srv, "ivy", "Ivy", BrowserOptions{})
	jon := openChatPage(t, ctx, srv, "jon", "Jon", sound)
	convID := ivy.openDirect(ctx, "jon")
	ivy.waitChat(ctx, chatLimit, "seeing Jon online", func(s chatState) bool { return s.Presence["jon"] == "online" })

	ring := func() {
		t.Helper()
		if err := ivy.B.Click(ctx, `[data-testid="call-button"]`); err != nil {
			t.Fatal(err)
		}
		jon.waitVisible(ctx, "incoming-call", true)
		st := jon.waitChat(ctx, chatLimit, "ringing", func(s chatState) bool {
			return s.Calls != nil && len(s.Calls.Incoming) == 1 && s.Calls.Incoming[0].Caller == "ivy"
		})
		if st.Calls.Tone != "playing" {
			t.Errorf("Jon: ring tone %q while ringing, want playing", st.Calls.Tone)
		}
		if who, _ := Eval[string](ctx, jon.B, `document.querySelector('[data-testid="incoming-caller"]').textContent`); who != "Ivy" {
			t.Errorf("Jon: incoming call from %q, want Ivy", who)
		}
		ivy.waitChat(ctx, chatLimit, "hearing it ring", func(s chatState) bool {
			return s.Calls != nil && s.Calls.Outgoing != nil && s.Calls.Outgoing.State == "ringing"
		})
		ivy.waitVisible(ctx, "outgoing-call", true)
	}

	// 1. Declined.
	ring()
	jon.shot(ctx, "ringing")
	ivy.shot(ctx, "calling")
	if err := jon.B.Click(ctx, `[data-testid="call-decline"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitVisible(ctx, "incoming-call", false)
	st := ivy.waitChat(ctx, chatLimit, "told of the decline", func(s chatState) bool {
		return s.Calls.Outgoing == nil && s.Calls.LastEnded != nil && s.Calls.LastEnded.Reason == "declined"
	})
	// The server tells a caller only the callee's identity until they
	// have exchanged messages, so the notice may name "jon".
	if !strings.Contains(strings.ToLower(st.Calls.LastEnded.Text), "jon declined") {
		t.Errorf("Ivy: notice %q, want one saying Jon declined", st.Calls.LastEnded.Text)
	}
	for _, p := range []*participant{ivy, jon} {
		p.waitChat(ctx, chatLimit, "with the declined call in the conversation", func(s chatState) bool {
			return s.conv(convID).kinds("call_declined") == 1
		})
	}
	if tone, _ := Eval[string](ctx, jon.B, `window.parley.chat().calls.tone`); tone != "off" {
		t.Errorf("Jon: ring tone %q after declining, want off", tone)
	}

	// 2. Nobody answers within the ring timeout.
	ring()
	rang := time.Now()
	ivy.waitChat(ctx, ringTimeout+chatLimit, "told nobody answered", func(s chatState) bool {
		return s.Calls.Outgoing == nil && s.Calls.LastEnded != nil && s.Calls.LastEnded.Reason == "no_answer"
	})
	if d := time.Since(rang); d < ringTimeout-time.Second {
		t.Errorf("Ivy: the call ended after %v, before the %v ring timeout", d, ringTimeout)
	}
	jon.waitVisible(ctx, "incoming-call", false)
	jon.openConversation(ctx, convID)
	for _, p := range []*participant{ivy, jon} {
		p.waitChat(ctx, chatLimit, "with the missed call in the conversation", func(s chatState) bool {
			c := s.conv(convID)
			return c.kinds("call_missed") == 1 && c.kinds("call_declined") == 1 && seqsAscending(c)
		})
	}
	texts, err := Eval[[]string](ctx, jon.B, `[...document.querySelectorAll('[data-testid="message"][data-kind^="call_"] [data-testid="message-text"]')].map(e => e.textContent)`)
	if err != nil || len(texts) != 2 || texts[0] != "You declined a call from Ivy" || texts[1] != "Missed call from Ivy" {
		t.Errorf("Jon: call entries shown %q (err %v)", texts, err)
	}
	ivy.shot(ctx, "call-entries")
	jon.shot(ctx, "call-entries")

	// 3. Accepted: both pages move to the call room and see each other.
	ring()
	jon.acceptCall(ctx)
	var room string
	for _, p := range []*participant{jon, ivy} {
		st := p.waitState(ctx, 30*time.Second, "in the call room", func(s clientState) bool {
			return s.Status == "connected" && strings.HasPrefix(s.Room, "call-") && s.Publisher == "connected"
		})
		if room == "" {
			room = st.Room
		} else if st.Room != room {
			t.Fatalf("%s joined %s, the other %s", p.Name, st.Room, room)
		}
	}
	ivyStats := waitSeesOthers(ctx, ivy, jon)
	jonStats := waitSeesOthers(ctx, jon, ivy)
	ivy.assertFlowing(ctx, flowingFrom(ivyStats, "Jon"))
	jon.assertFlowing(ctx, flowingFrom(jonStats, "Ivy"))
	ivy.shot(ctx, "in-call")
	// An accepted call leaves no entry.
	jon.waitChat(ctx, chatLimit, "synced in the call", func(s chatState) bool { return s.Status == "online" })
	st, err = jon.chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.conv(convID); c == nil || c.kinds("call_missed") != 1 || c.kinds("call_declined") != 1 {
		t.Errorf("Jon: call entries after the accepted call: %s", describeChat(st))
	}

	// Ivy hangs up and goes back to her chats (the tab kept her chat token).
	if err := ivy.B.Click(ctx, `[data-testid="leave-button"]`); err != nil {
		t.Fatal(err)
	}
	if err := ivy.B.Click(ctx, `[data-testid="back-to-chats"]`); err != nil {
		t.Fatal(err)
	}
	ivy.waitChat(ctx, chatLimit, "back on /chat with the conversation", func(s chatState) bool {
		return s.Status == "online" && s.Calls != nil && s.conv(convID) != nil
	})
}

// TestChatCallHangUpEndsForBoth: Ivy calls Jon from /chat, Jon answers,
// and when Ivy hangs up Jon's call ends too, with an end page that says
// Ivy left and leads back to his chats.
func TestChatCallHangUpEndsForBoth(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	ivy := openChatPage(t, ctx, srv, "ivy", "Ivy", BrowserOptions{})
	jon := openChatPage(t, ctx, srv, "jon", "Jon", BrowserOptions{})
	ivy.openDirect(ctx, "jon")
	ivy.waitChat(ctx, chatLimit, "seeing Jon online", func(s chatState) bool { return s.Presence["jon"] == "online" })
	if err := ivy.B.Click(ctx, `[data-testid="call-button"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitVisible(ctx, "incoming-call", true)
	jon.acceptCall(ctx)
	for _, p := range []*participant{jon, ivy} {
		p.waitState(ctx, 30*time.Second, "in the call room", func(s clientState) bool {
			return s.Status == "connected" && strings.HasPrefix(s.Room, "call-") && s.Publisher == "connected"
		})
	}
	waitSeesOthers(ctx, jon, ivy)

	if err := ivy.B.Click(ctx, `[data-testid="leave-button"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitState(ctx, chatLimit, "ended by Ivy's hang-up", func(s clientState) bool { return s.Status == "closed" })
	jon.waitVisible(ctx, "ended", true)
	if msg, _ := Eval[string](ctx, jon.B, `document.querySelector('[data-testid="ended-message"]').textContent`); msg != "Ivy left the call." {
		t.Errorf("Jon: end page says %q, want \"Ivy left the call.\"", msg)
	}
	jon.waitVisible(ctx, "back-to-chats", true)
	jon.shot(ctx, "hung-up")
	if err := jon.B.Click(ctx, `[data-testid="back-to-chats"]`); err != nil {
		t.Fatal(err)
	}
	jon.waitChat(ctx, chatLimit, "back on /chat", func(s chatState) bool { return s.Status == "online" })
}
