package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/signaling/auth"
)

// hostGrants is a meeting host's token: a call user who moderates.
var hostGrants = auth.Grants{Publish: true, Subscribe: true, Chat: true, Moderate: true}

// modLimit bounds how long a moderation effect may take to show.
const modLimit = 15 * time.Second

// modState mirrors the moderation part of window.parley.state().
type modState struct {
	Status string `json:"status"`
	Self   *struct {
		Identity  string `json:"identity"`
		Moderator bool   `json:"moderator"`
	} `json:"self"`
	Settings struct {
		Lobby                bool `json:"lobby"`
		Locked               bool `json:"locked"`
		ModeratorsUnmuteOnly bool `json:"moderatorsUnmuteOnly"`
	} `json:"settings"`
	Lobby []struct {
		LobbyID  string `json:"lobbyId"`
		Identity string `json:"identity"`
	} `json:"lobby"`
	MicLocked    bool `json:"micLocked"`
	Reconnects   int  `json:"reconnects"`
	Participants []struct {
		Identity  string `json:"identity"`
		Moderator bool   `json:"moderator"`
	} `json:"participants"`
}

func (p *participant) mod(ctx context.Context) (modState, error) {
	return Eval[modState](ctx, p.B, `window.parley.state()`)
}

func (p *participant) waitMod(ctx context.Context, what string, ok func(modState) bool) modState {
	p.t.Helper()
	var last modState
	var lastErr error
	if !poll(ctx, modLimit, func() bool {
		last, lastErr = p.mod(ctx)
		return lastErr == nil && ok(last)
	}) {
		p.t.Fatalf("%s: not %s within %v: %+v (err %v)", p.Name, what, modLimit, last, lastErr)
	}
	return last
}

// press clicks the element matching css through the DOM (it may sit in
// the panel's list view or a closed <details>, out of sight).
func (p *participant) press(ctx context.Context, css string) {
	p.t.Helper()
	if !poll(ctx, modLimit, func() bool {
		ok, err := Eval[bool](ctx, p.B, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e || e.disabled) return false; e.click(); return true; })()`, css))
		return err == nil && ok
	}) {
		p.t.Fatalf("%s: no enabled %s to press within %v", p.Name, css, modLimit)
	}
}

func (p *participant) text(ctx context.Context, testid string) string {
	s, _ := Eval[string](ctx, p.B, fmt.Sprintf(`document.querySelector('[data-testid=%q]')?.textContent || ''`, testid))
	return s
}

// waitText waits until the element's text contains want.
func (p *participant) waitText(ctx context.Context, testid, want string) {
	p.t.Helper()
	var last string
	if !poll(ctx, modLimit, func() bool {
		last = p.text(ctx, testid)
		return strings.Contains(last, want)
	}) {
		p.t.Fatalf("%s: %s says %q, want it to contain %q", p.Name, testid, last, want)
	}
}

// personAction is the selector of a moderator's action on identity in
// the people list.
func personAction(identity, testid string) string {
	return fmt.Sprintf(`[data-testid="person"][data-identity=%q] [data-testid=%q]`, identity, testid)
}

// openBrowser starts a browser without opening anything.
func openBrowser(t *testing.T, ctx context.Context, name string) *participant {
	t.Helper()
	b, err := StartBrowser(context.Background(), name, BrowserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: name, B: b}
	t.Cleanup(func() { p.finish(ctx) })
	return p
}

// knock opens the room's link with a token in p's tab and waits until the
// page shows the lobby's waiting screen.
func (p *participant) knock(ctx context.Context, srv *server, room, identity, name string) {
	p.t.Helper()
	tok := mintToken(p.t, identity, name, room, callUser)
	// The query differs per identity: a link that differed from the
	// tab's address only in its fragment would not load the page again.
	if err := p.B.Navigate(ctx, fmt.Sprintf("%s/r/%s?as=%s#token=%s", srv.URL, url.PathEscape(room), url.QueryEscape(identity), tok)); err != nil {
		p.t.Fatal(err)
	}
	p.waitMod(ctx, "waiting in the lobby", func(s modState) bool { return s.Status == "waiting" })
	if !visible(ctx, p, "lobby-wait") {
		p.t.Fatalf("%s: waiting, but the lobby screen is not shown", p.Name)
	}
	p.waitText(ctx, "lobby-message", "Waiting for the host to let you in")
	p.waitText(ctx, "lobby-name", name)
	p.shot(ctx, "lobby-"+identity)
}

func (p *participant) waitPublishing(ctx context.Context) {
	p.t.Helper()
	p.waitState(ctx, 30*time.Second, "joined and publishing", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
	})
	if visible(ctx, p, "lobby-wait") {
		p.t.Errorf("%s: in the call, but the lobby screen still shows", p.Name)
	}
}

// stayEnded checks that an ended page stays ended: no rejoin after the
// first backoff steps.
func (p *participant) stayEnded(ctx context.Context) {
	p.t.Helper()
	time.Sleep(3 * time.Second)
	s, err := p.mod(ctx)
	if err != nil || (s.Status != "closed" && s.Status != "failed") {
		p.t.Errorf("%s: status %q after the end (err %v), want it to stay ended", p.Name, s.Status, err)
	}
	if !visible(ctx, p, "ended") {
		p.t.Errorf("%s: the ended screen is not shown", p.Name)
	}
}

// TestModLobby: with the lobby on, a joiner waits on the waiting screen
// and the host sees a knock; Admit lets one in, Deny tells one they were
// not let in (and it stays out), Admit all lets several in at once.
func TestModLobby(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-lobby"
	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")
	host.waitMod(ctx, "a moderator", func(s modState) bool { return s.Self != nil && s.Self.Moderator })
	host.press(ctx, `[data-testid="mod-lobby"]`)
	host.waitMod(ctx, "lobby on", func(s modState) bool { return s.Settings.Lobby })

	one := openBrowser(t, ctx, "Bob")
	one.knock(ctx, srv, room, "bob", "Bob")
	host.waitText(ctx, "knocks", "Bob wants to join")
	host.shot(ctx, "knock")
	host.press(ctx, `[data-testid="knock"][data-identity="bob"] [data-testid="knock-admit"]`)
	one.waitPublishing(ctx)
	host.waitMod(ctx, "Bob in the room, no knock left", func(s modState) bool {
		return len(s.Participants) == 1 && s.Participants[0].Identity == "bob" && len(s.Lobby) == 0
	})

	two := openBrowser(t, ctx, "Cy")
	two.knock(ctx, srv, room, "cy", "Cy")
	host.press(ctx, `[data-testid="knock"][data-identity="cy"] [data-testid="knock-deny"]`)
	two.waitMod(ctx, "told it was denied", func(s modState) bool { return s.Status == "closed" })
	two.waitText(ctx, "ended-message", "The host did not let you in.")
	two.stayEnded(ctx)
	host.waitMod(ctx, "no knock left", func(s modState) bool { return len(s.Lobby) == 0 })

	// Admit all: two new joiners wait at once (Bob's tab becomes Dee).
	one.knock(ctx, srv, room, "dee", "Dee")
	two.knock(ctx, srv, room, "eve", "Eve")
	host.waitMod(ctx, "two knocks", func(s modState) bool { return len(s.Lobby) == 2 })
	host.waitText(ctx, "knock-admit-all", "Admit all (2)")
	host.press(ctx, `[data-testid="knock-admit-all"]`)
	one.waitPublishing(ctx)
	two.waitPublishing(ctx)
	host.waitMod(ctx, "Dee and Eve in, nobody waiting", func(s modState) bool {
		return len(s.Participants) == 2 && len(s.Lobby) == 0
	})
	if visible(ctx, host, "knocks") {
		t.Errorf("Hana: knocks still shown after Admit all")
	}
}

// TestModLockAndMute: a locked room holds a valid token in the lobby
// until admitted; then, under "moderators unmute only", a mute by the
// host stops the muted microphone's audio reaching the others and
// disables the muted page's unmute button until the host allows it.
func TestModLockAndMute(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-lock"
	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")
	host.press(ctx, `[data-testid="mod-lock"]`)
	host.waitMod(ctx, "locked", func(s modState) bool { return s.Settings.Locked && !s.Settings.Lobby })
	host.waitText(ctx, "mod-lock", "Unlock meeting")

	bob := openBrowser(t, ctx, "Bob")
	bob.knock(ctx, srv, room, "bob", "Bob")
	host.press(ctx, `[data-testid="knock"][data-identity="bob"] [data-testid="knock-admit"]`)
	bob.waitPublishing(ctx)

	host.press(ctx, `[data-testid="mod-unmute-only"]`)
	host.waitMod(ctx, "moderators unmute only", func(s modState) bool { return s.Settings.ModeratorsUnmuteOnly })
	bob.waitMod(ctx, "seeing the setting", func(s modState) bool { return s.Settings.ModeratorsUnmuteOnly })

	// Bob's audio reaches Hana and grows.
	audio := func(ss []trackStat) (trackStat, bool) {
		for _, s := range ss {
			if s.Kind == "audio" && s.Name == "Bob" {
				return s, true
			}
		}
		return trackStat{}, false
	}
	host.waitStats(ctx, 30*time.Second, "Bob's audio arriving", func(ss []trackStat) bool {
		a, ok := audio(ss)
		return ok && a.PacketsReceived > 20
	})
	host.waitText(ctx, "person-name", "Bob")
	if ok, _ := Eval[bool](ctx, host.B, `document.querySelector('[data-testid="person"][data-identity="bob"]').dataset.micMuted === 'false'`); !ok {
		t.Errorf("Hana: the people list does not show Bob's microphone on")
	}

	// The panel's list view: people with their state and actions.
	host.press(ctx, `[data-testid="back-button"]`)
	host.press(ctx, personAction("bob", "person-actions-toggle"))
	host.shot(ctx, "people-panel")
	host.press(ctx, personAction("bob", "mod-mute"))
	bob.waitText(ctx, "banner", "Hana muted your microphone")
	bob.waitMod(ctx, "microphone locked", func(s modState) bool { return s.MicLocked })
	var disabled bool
	if !poll(ctx, modLimit, func() bool {
		disabled, _ = Eval[bool](ctx, bob.B, `document.querySelector('[data-testid="mic-toggle"]').disabled`)
		return disabled
	}) {
		t.Errorf("Bob: the unmute button is enabled under moderators-unmute-only")
	}
	if title, _ := Eval[string](ctx, bob.B, `document.querySelector('[data-testid="mic-toggle"]').title`); !strings.Contains(title, "only a moderator") {
		t.Errorf("Bob: mic button title %q does not say only a moderator can unmute", title)
	}
	bob.shot(ctx, "muted-by-host")

	// Within ~1.5 s the audio stops growing at Hana's end.
	time.Sleep(1500 * time.Millisecond)
	s1, err := host.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	s2, err := host.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a1, ok1 := audio(s1)
	a2, ok2 := audio(s2)
	if !ok1 || !ok2 {
		t.Fatalf("Hana: Bob's audio track gone after the mute (%v, %v): a mute keeps the track", ok1, ok2)
	}
	if a2.PacketsReceived > a1.PacketsReceived {
		t.Errorf("Hana: Bob's muted audio still arrives: packetsReceived %d -> %d", a1.PacketsReceived, a2.PacketsReceived)
	}
	if !poll(ctx, modLimit, func() bool {
		ok, _ := Eval[bool](ctx, host.B, `document.querySelector('[data-testid="person"][data-identity="bob"]')?.dataset.micMuted === 'true'`)
		return ok
	}) {
		t.Errorf("Hana: the people list does not show Bob's microphone muted")
	}

	// The host allows it: Bob can unmute, and his audio flows again.
	host.press(ctx, personAction("bob", "mod-allow-unmute"))
	bob.waitMod(ctx, "allowed to unmute", func(s modState) bool { return !s.MicLocked })
	bob.press(ctx, `[data-testid="mic-toggle"]`)
	before, _ := host.stats(ctx)
	b0, _ := audio(before)
	host.waitStats(ctx, modLimit, "Bob's audio flowing again", func(ss []trackStat) bool {
		a, ok := audio(ss)
		return ok && a.PacketsReceived > b0.PacketsReceived+10
	})
}

// forgeHook records every WebSocket the page opens and the errors it
// receives, so a test can send from the page's own connection.
const forgeHook = `(() => {
	const Real = window.WebSocket;
	window.__sockets = [];
	window.__errors = [];
	window.WebSocket = function (...args) {
		const ws = new Real(...args);
		window.__sockets.push(ws);
		ws.addEventListener('message', (ev) => {
			try { const m = JSON.parse(ev.data); if (m.type === 'error') window.__errors.push(m.data.code); } catch {}
		});
		return ws;
	};
	window.WebSocket.prototype = Real.prototype;
	Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();`

// TestModRemoveBanEndForged: a non-moderator's forged moderation messages
// from its page's WebSocket are refused and change nothing; the host
// removes Bob with a ban (he is told, stays out, and a fresh token for
// him is refused), then ends the meeting (everyone is told, nobody
// rejoins).
func TestModRemoveBanEndForged(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	srv := startServer(t)
	const room = "e2e-remove"
	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")

	bob := openBrowser(t, ctx, "Bob")
	tctx, cancel := context.WithTimeout(bob.B.Context(), 10*time.Second)
	if _, err := chromedp.Call(tctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: forgeHook}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := bob.B.Navigate(ctx, fmt.Sprintf("%s/r/%s#token=%s", srv.URL, room, mintToken(t, "bob", "Bob", room, callUser))); err != nil {
		t.Fatal(err)
	}
	bob.waitPublishing(ctx)
	cyd := joinWithToken(t, ctx, srv, room, "Cyd", mintToken(t, "cyd", "Cyd", room, callUser), "")
	host.waitMod(ctx, "Bob and Cyd in", func(s modState) bool { return len(s.Participants) == 2 })
	if s, _ := bob.mod(ctx); s.Self == nil || s.Self.Moderator {
		t.Fatalf("Bob: state %+v, want a non-moderator", s)
	}
	if visible(ctx, bob, "room-controls") {
		t.Errorf("Bob: room controls shown to a non-moderator")
	}

	// Forged: Bob's own connection asks for moderator actions.
	forged := []string{
		`{"type":"mod_remove","data":{"identity":"cyd","ban":true}}`,
		`{"type":"mod_mute","data":{"identity":"hana","source":"microphone"}}`,
		`{"type":"room_settings","data":{"locked":true}}`,
		`{"type":"end_meeting"}`,
		`{"type":"mod_lower_hand","data":{"identity":"hana"}}`,
	}
	for _, f := range forged {
		if _, err := Eval[bool](ctx, bob.B, fmt.Sprintf(`(() => { const ws = window.__sockets.filter((s) => s.readyState === 1).pop(); ws.send(%q); return true; })()`, f)); err != nil {
			t.Fatal(err)
		}
	}
	var codes []string
	if !poll(ctx, modLimit, func() bool {
		codes, _ = Eval[[]string](ctx, bob.B, `window.__errors`)
		return len(codes) >= len(forged)
	}) {
		t.Fatalf("Bob: errors %q for %d forged messages", codes, len(forged))
	}
	for _, c := range codes {
		if c != "forbidden" {
			t.Errorf("Bob: forged message answered %q, want forbidden", c)
		}
	}
	time.Sleep(time.Second)
	hs, _ := host.mod(ctx)
	cs, _ := cyd.mod(ctx)
	if hs.Status != "connected" || cs.Status != "connected" || len(hs.Participants) != 2 || hs.Settings.Locked {
		t.Errorf("after forged messages: Hana %+v, Cyd status %q; want nothing changed", hs, cs.Status)
	}
	if mic, _ := Eval[bool](ctx, host.B, `window.parley.state().local.microphone.enabled`); !mic {
		t.Errorf("Hana: microphone muted by a forged message")
	}

	// Remove with a ban.
	if visible(ctx, host, "confirm-dialog") {
		t.Errorf("Hana: the confirm dialog shows before anything asks")
	}
	host.press(ctx, personAction("bob", "mod-remove"))
	host.waitVisible(ctx, "confirm-dialog", true)
	host.waitText(ctx, "confirm-text", "Remove Bob from the meeting?")
	host.shot(ctx, "confirm-remove")
	host.press(ctx, `[data-testid="confirm-ban"]`)
	host.press(ctx, `[data-testid="confirm-ok"]`)
	bob.waitMod(ctx, "removed", func(s modState) bool { return s.Status == "closed" })
	bob.waitText(ctx, "ended-message", "You were removed from the meeting by Hana.")
	bob.stayEnded(ctx)
	host.waitMod(ctx, "Bob gone", func(s modState) bool { return len(s.Participants) == 1 })
	c, _, err := dialWS(srv, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reply := joinReply(t, c, mintToken(t, "bob", "Bob", room, callUser))
	c.Close()
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(reply.Data, &e)
	if reply.Type != "error" || e.Code != "banned" {
		t.Errorf("a fresh token for banned Bob: reply %s %s, want error banned", reply.Type, reply.Data)
	}

	// End for all.
	host.press(ctx, `[data-testid="mod-end"]`)
	host.press(ctx, `[data-testid="confirm-ok"]`)
	cyd.waitMod(ctx, "ended", func(s modState) bool { return s.Status == "closed" })
	cyd.waitText(ctx, "ended-message", "The host ended the meeting.")
	host.waitMod(ctx, "ended", func(s modState) bool { return s.Status == "closed" })
	host.waitText(ctx, "ended-message", "You ended the meeting for everyone.")
	cyd.stayEnded(ctx)
	host.stayEnded(ctx)
}

// TestModLobbyExpiry: a joiner nobody lets in is told when the wait runs
// out and does not knock again by itself; the host's knock goes away.
func TestModLobbyExpiry(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServerWith(t, map[string]any{"signaling": map[string]any{"lobby_timeout": "4s"}})
	const room = "e2e-expiry"
	host := joinWithToken(t, ctx, srv, room, "Hana", mintToken(t, "hana", "Hana", room, hostGrants), "")
	host.press(ctx, `[data-testid="mod-lobby"]`)
	host.waitMod(ctx, "lobby on", func(s modState) bool { return s.Settings.Lobby })
	bob := openBrowser(t, ctx, "Bob")
	bob.knock(ctx, srv, room, "bob", "Bob")
	host.waitMod(ctx, "Bob knocking", func(s modState) bool { return len(s.Lobby) == 1 })
	bob.waitMod(ctx, "told the wait ran out", func(s modState) bool { return s.Status == "closed" })
	bob.waitText(ctx, "ended-message", "Nobody let you in before the waiting time ran out.")
	host.waitMod(ctx, "the knock gone", func(s modState) bool { return len(s.Lobby) == 0 })
	bob.stayEnded(ctx)
	if s, _ := host.mod(ctx); len(s.Lobby) != 0 || len(s.Participants) != 0 {
		t.Errorf("Hana: after the expiry %+v, want nobody waiting or in", s)
	}
}
