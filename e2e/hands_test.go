package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// handState mirrors what window.parley.state() says of hands.
type handState struct {
	Self *struct {
		HandRaised bool `json:"handRaised"`
	} `json:"self"`
	Settings struct {
		ScreenShare     string `json:"screenShare"`
		Chat            string `json:"chat"`
		MaxParticipants int    `json:"maxParticipants"`
	} `json:"settings"`
	MicLocked    bool `json:"micLocked"`
	Participants []struct {
		Identity   string `json:"identity"`
		HandRaised bool   `json:"handRaised"`
	} `json:"participants"`
}

func (p *participant) waitHands(ctx context.Context, what string, ok func(handState) bool) {
	p.t.Helper()
	var last handState
	var lastErr error
	if !poll(ctx, modLimit, func() bool {
		last, lastErr = Eval[handState](ctx, p.B, `window.parley.state()`)
		return lastErr == nil && ok(last)
	}) {
		p.t.Fatalf("%s: not %s within %v: %+v (err %v)", p.Name, what, modLimit, last, lastErr)
	}
}

// waitJS waits until the expression is true in p's page.
func (p *participant) waitJS(ctx context.Context, what, expr string) {
	p.t.Helper()
	if !poll(ctx, modLimit, func() bool {
		ok, err := Eval[bool](ctx, p.B, expr)
		return err == nil && ok
	}) {
		p.t.Fatalf("%s: not %s within %v (%s)", p.Name, what, modLimit, expr)
	}
}

// tileOf is the selector of identity's camera tile as p's page shows it.
func tileOf(ctx context.Context, t *testing.T, p *participant, identity string) string {
	t.Helper()
	sid, err := Eval[string](ctx, p.B, fmt.Sprintf(`(window.parley.state().participants.find((x) => x.identity === %q) || {}).sid || ''`, identity))
	if err != nil || sid == "" {
		t.Fatalf("%s: no participant %s (%v)", p.Name, identity, err)
	}
	return fmt.Sprintf(`[data-testid="tile"][data-source="camera"][data-participant=%q]`, sid)
}

// TestHandsAndReactions: Bob raises his hand from the controls; Hana
// sees ✋ on his tile, in the people list and first in the queue of
// raised hands (her own, raised later, comes second), and lowers it; Bob
// is told. A reaction Bob sends floats over his tile on Hana's page and
// shows beside him in her people list, then goes.
func TestHandsAndReactions(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-hands"
	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")
	bob := joinWithToken(t, ctx, srv, room, "Bob", mintToken(t, "bob", "Bob", room, callUser), "")
	host.waitHands(ctx, "seeing Bob", func(s handState) bool { return len(s.Participants) == 1 })

	if v, _ := Eval[string](ctx, bob.B, `document.querySelector('[data-testid="hand-toggle"]').getAttribute('aria-pressed')`); v != "false" {
		t.Errorf("Bob: hand toggle aria-pressed %q before raising", v)
	}
	bob.press(ctx, `[data-testid="hand-toggle"]`)
	bob.waitHands(ctx, "hand up", func(s handState) bool { return s.Self != nil && s.Self.HandRaised })
	bob.waitJS(ctx, "showing the toggle pressed", `document.querySelector('[data-testid="hand-toggle"]').getAttribute('aria-pressed') === 'true'`)
	bob.waitText(ctx, "hand-toggle", "Lower hand")
	bobTile := tileOf(ctx, t, host, "bob")
	host.waitJS(ctx, "✋ on Bob's tile", fmt.Sprintf(`!!document.querySelector('%s [data-testid="tile-hand"]')`, bobTile))
	host.waitJS(ctx, "✋ beside Bob in the people list", `!!document.querySelector('[data-testid="person"][data-identity="bob"] [data-testid="person-hand"]')`)

	// Hana raises hers too: the queue lists Bob first, who raised first.
	host.press(ctx, `[data-testid="hand-toggle"]`)
	host.waitJS(ctx, "two hands queued", `document.querySelectorAll('[data-testid="hand-row"]').length === 2`)
	order, _ := Eval[[]string](ctx, host.B, `[...document.querySelectorAll('[data-testid="hand-row"]')].map((r) => r.dataset.identity)`)
	if strings.Join(order, ",") != "bob,hana" {
		t.Errorf("Hana: hands queued %q, want bob then hana", order)
	}
	host.shot(ctx, "hands")
	if n, _ := Eval[int](ctx, bob.B, `document.querySelectorAll('[data-testid="hand-lower"]').length`); n != 0 {
		t.Errorf("Bob: %d Lower hand buttons shown to a non-moderator", n)
	}

	host.press(ctx, `[data-testid="hand-row"][data-identity="bob"] [data-testid="hand-lower"]`)
	bob.waitHands(ctx, "hand lowered", func(s handState) bool { return s.Self != nil && !s.Self.HandRaised })
	bob.waitText(ctx, "banner", "Hana lowered your hand.")
	bob.waitJS(ctx, "showing the toggle released", `document.querySelector('[data-testid="hand-toggle"]').getAttribute('aria-pressed') === 'false'`)
	host.waitJS(ctx, "no ✋ on Bob's tile", fmt.Sprintf(`!document.querySelector('%s [data-testid="tile-hand"]')`, bobTile))

	// Reactions.
	bob.press(ctx, `[data-testid="react-toggle"]`)
	bob.waitVisible(ctx, "react-menu", true)
	floatAnim := func(emoji string) string {
		a, _ := Eval[string](ctx, host.B, fmt.Sprintf(`(() => { const e = [...document.querySelectorAll('%s [data-testid="tile-reaction"]')].find((x) => x.textContent === %q); return e ? getComputedStyle(e).animationName : ''; })()`, bobTile, emoji))
		return a
	}
	// A reaction shows for 3 s: each check comes straight after the last.
	bob.press(ctx, `[data-testid="react-pick"][data-emoji="👏"]`)
	bob.waitJS(ctx, "👏 over its own tile", `(document.querySelector('[data-testid="tile"][data-self="true"] [data-testid="tile-reaction"]') || {}).textContent === '👏'`)
	host.waitJS(ctx, "👏 over Bob's tile", fmt.Sprintf(`(document.querySelector('%s [data-testid="tile-reaction"]') || {}).textContent === '👏'`, bobTile))
	if a := floatAnim("👏"); a != "reaction-rise" {
		t.Errorf("Hana: the reaction's animation is %q, want it to rise", a)
	}
	host.waitJS(ctx, "👏 beside Bob in the people list", `(document.querySelector('[data-testid="person"][data-identity="bob"] [data-testid="person-reaction"]') || {}).textContent === '👏'`)
	host.shot(ctx, "reaction")
	host.waitJS(ctx, "the reaction gone after a few seconds", fmt.Sprintf(`!document.querySelector('%s [data-testid="tile-reaction"]')`, bobTile))
	// With reduced motion it shows without moving.
	tctx, cancel := context.WithTimeout(host.B.Context(), 10*time.Second)
	_, err := chromedp.Call(tctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	bob.press(ctx, `[data-testid="react-pick"][data-emoji="🎉"]`)
	host.waitJS(ctx, "🎉 over Bob's tile", fmt.Sprintf(`[...document.querySelectorAll('%s [data-testid="tile-reaction"]')].some((x) => x.textContent === '🎉')`, bobTile))
	if a := floatAnim("🎉"); a != "none" {
		t.Errorf("Hana (reduced motion): the reaction's animation is %q, want none", a)
	}
	host.waitJS(ctx, "the still reaction gone after a few seconds too", fmt.Sprintf(`!document.querySelector('%s [data-testid="tile-reaction"]')`, bobTile))
	bob.waitJS(ctx, "its own reactions gone", `!document.querySelector('[data-testid="tile-reaction"]')`)
}

// TestHandsAskUnmuteAndSettings: under "moderators unmute only" Bob,
// muted by Hana, asks to unmute; Hana allows it from the pop-up and Bob
// unmutes. Then the room settings from Hana's meeting controls take
// effect on Bob's page: screen sharing and chat for moderators only, and
// a participant cap that refuses one more.
func TestHandsAskUnmuteAndSettings(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-askunmute"
	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")
	bob := joinWithToken(t, ctx, srv, room, "Bob", mintToken(t, "bob", "Bob", room, callUser), "")
	host.waitHands(ctx, "seeing Bob", func(s handState) bool { return len(s.Participants) == 1 })
	if visible(ctx, bob, "ask-unmute") {
		t.Errorf("Bob: Ask to unmute shown while nothing stops him unmuting")
	}

	host.press(ctx, `[data-testid="mod-unmute-only"]`)
	bob.waitMod(ctx, "seeing the setting", func(s modState) bool { return s.Settings.ModeratorsUnmuteOnly })
	host.press(ctx, personAction("bob", "mod-mute"))
	bob.waitMod(ctx, "microphone locked", func(s modState) bool { return s.MicLocked })
	bob.waitVisible(ctx, "ask-unmute", true)
	bob.press(ctx, `[data-testid="ask-unmute"]`)
	bob.waitText(ctx, "banner", "Asked the moderators")
	bob.waitText(ctx, "ask-unmute", "Asked")
	host.waitText(ctx, "unmute-ask-text", "Bob asks to unmute")
	host.shot(ctx, "ask-unmute")
	host.press(ctx, `[data-testid="unmute-ask"][data-identity="bob"] [data-testid="unmute-ask-allow"]`)
	bob.waitMod(ctx, "allowed to unmute", func(s modState) bool { return !s.MicLocked })
	bob.waitVisible(ctx, "ask-unmute", false)
	host.waitVisible(ctx, "unmute-ask", false)
	bob.press(ctx, `[data-testid="mic-toggle"]`)
	bob.waitJS(ctx, "microphone on", `window.parley.state().local.microphone.enabled === true`)
	host.waitJS(ctx, "Bob's microphone shown on", `document.querySelector('[data-testid="person"][data-identity="bob"]')?.dataset.micMuted === 'false'`)

	// Screen sharing for moderators only.
	if d, _ := Eval[bool](ctx, bob.B, `document.querySelector('[data-testid="screen-toggle"]').disabled`); d {
		t.Fatal("Bob: screen share disabled before any setting")
	}
	host.press(ctx, `[data-testid="mod-screen-share"]`)
	host.waitText(ctx, "mod-screen-share", "Screen sharing: moderators only")
	bob.waitJS(ctx, "screen share disabled", `document.querySelector('[data-testid="screen-toggle"]').disabled`)
	if title, _ := Eval[string](ctx, bob.B, `document.querySelector('[data-testid="screen-toggle"]').title`); !strings.Contains(title, "Only moderators") {
		t.Errorf("Bob: screen share title %q does not say why", title)
	}
	if d, _ := Eval[bool](ctx, host.B, `document.querySelector('[data-testid="screen-toggle"]').disabled`); d {
		t.Errorf("Hana: a moderator's screen share disabled")
	}

	// Chat for moderators only.
	host.press(ctx, `[data-testid="mod-chat"]`)
	bob.waitHands(ctx, "chat for moderators", func(s handState) bool { return s.Settings.Chat == "moderators" })
	bob.waitJS(ctx, "composer disabled", `(() => { const i = document.querySelector('[data-testid="composer-input"]'); return i.disabled && i.placeholder === 'Only moderators can write here'; })()`)
	bob.shot(ctx, "chat-moderators-only")
	if d, _ := Eval[bool](ctx, host.B, `document.querySelector('[data-testid="composer-input"]').disabled`); d {
		t.Errorf("Hana: a moderator's composer disabled")
	}

	// A cap of 2: a third joiner is refused.
	if _, err := Eval[bool](ctx, host.B, `(() => { const i = document.querySelector('[data-testid="mod-max"]'); i.value = '2'; return true; })()`); err != nil {
		t.Fatal(err)
	}
	host.press(ctx, `[data-testid="mod-max-set"]`)
	bob.waitHands(ctx, "the cap", func(s handState) bool { return s.Settings.MaxParticipants == 2 })
	c, _, err := dialWS(srv, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reply := joinReply(t, c, mintToken(t, "cyd", "Cyd", room, callUser))
	c.Close()
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(reply.Data, &e)
	if reply.Type != "error" || e.Code != "room_full" {
		t.Errorf("a third joiner past the cap: reply %s %s, want error room_full", reply.Type, reply.Data)
	}
}

// TestModLobbyPhone: at phone size (390x844) the lobby's waiting screen
// and the host's knock pop-up have every control reachable (nothing
// covers them) and nothing overflows sideways; Admit works from there.
func TestModLobbyPhone(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-lobby-phone"
	host := startSized(t, ctx, "Hana", 390, 844)
	link := fmt.Sprintf("%s/r/%s#token=%s", srv.URL, url.PathEscape(room), mintToken(t, "hana", "Hana", room, hostGrants))
	if err := host.B.Navigate(ctx, link); err != nil {
		t.Fatal(err)
	}
	host.waitPublishing(ctx)
	host.press(ctx, `[data-testid="mod-lobby"]`)
	host.waitMod(ctx, "lobby on", func(s modState) bool { return s.Settings.Lobby })
	// The queue of raised hands shows too: it must not cover the knock.
	host.press(ctx, `[data-testid="hand-toggle"]`)
	host.waitVisible(ctx, "hand-queue", true)

	bob := startSized(t, ctx, "Bob", 390, 844)
	bob.knock(ctx, srv, room, "bob", "Bob")
	for _, id := range []string{"lobby-leave", "lobby-message"} {
		if why := bob.hitTest(ctx, id); why != "" {
			t.Errorf("Bob (phone): %s not reachable: %s", id, why)
		}
	}
	if o := bob.overflow(ctx); o != "" {
		t.Errorf("Bob (phone): lobby screen overflows: %s", o)
	}

	host.waitText(ctx, "knocks", "Bob wants to join")
	host.shot(ctx, "knock-phone")
	for _, id := range []string{"knock-admit", "knock-deny", "leave-button"} {
		if why := host.hitTest(ctx, id); why != "" {
			t.Errorf("Hana (phone): %s not reachable: %s", id, why)
		}
	}
	if o := host.overflow(ctx); o != "" {
		t.Errorf("Hana (phone): knock pop-up overflows: %s", o)
	}
	if visible(ctx, host, "hand-queue") {
		t.Errorf("Hana (phone): the queue of hands shows under the knock")
	}
	if why := host.hitTest(ctx, "knock-admit"); why == "" {
		if _, err := Eval[bool](ctx, host.B, `(() => { const b = document.querySelector('[data-testid="knock-admit"]'); const r = b.getBoundingClientRect(); document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2).click(); return true; })()`); err != nil {
			t.Fatal(err)
		}
	}
	bob.waitPublishing(ctx)
	host.waitVisible(ctx, "hand-queue", true) // back once nobody knocks
	if why := host.hitTest(ctx, "hand-toggle"); why != "" {
		t.Errorf("Hana (phone): hand toggle not reachable: %s", why)
	}
	// In the call at phone size, the controls hands and reactions added
	// stay reachable.
	for _, id := range []string{"hand-toggle", "react-toggle", "leave-button"} {
		if why := bob.hitTest(ctx, id); why != "" {
			t.Errorf("Bob (phone, in the call): %s not reachable: %s", id, why)
		}
	}
	bob.press(ctx, `[data-testid="react-toggle"]`)
	bob.waitVisible(ctx, "react-menu", true)
	if why := bob.hitTest(ctx, "react-pick"); why != "" {
		t.Errorf("Bob (phone): the reaction menu is not reachable: %s", why)
	}
	if o := bob.overflow(ctx); o != "" {
		t.Errorf("Bob (phone, in the call): overflows: %s", o)
	}
	bob.shot(ctx, "call-phone")

	// The host's meeting controls, settings included, fit the phone's
	// panel.
	host.press(ctx, `[data-testid="chat-toggle"]`)
	host.press(ctx, `[data-testid="back-button"]`)
	for _, id := range []string{"mod-screen-share", "mod-chat", "mod-max", "mod-max-set"} {
		if _, err := Eval[bool](ctx, host.B, `(() => { document.querySelector('[data-testid="`+id+`"]').scrollIntoView({block: 'center'}); return true; })()`); err != nil {
			t.Fatal(err)
		}
		if why := host.hitTest(ctx, id); why != "" {
			t.Errorf("Hana (phone): %s not reachable: %s", id, why)
		}
	}
	if o := host.overflow(ctx); o != "" {
		t.Errorf("Hana (phone, meeting controls): overflows: %s", o)
	}
	if why := host.hitTest(ctx, "new-chat-input"); why != "" {
		t.Errorf("Hana (phone): the queue of hands covers the open panel: %s", why)
	}
	host.shot(ctx, "meeting-controls-phone")
}
