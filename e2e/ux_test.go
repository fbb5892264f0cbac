package e2e

// The traps of issue #13 ("Bugs found"), each as a user meets them.

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
)

// startSized starts a browser whose page is exactly w x h CSS pixels
// (device emulation, so innerWidth is w whatever the window manager does).
func startSized(t *testing.T, ctx context.Context, name string, w, h int) *participant {
	t.Helper()
	p := startBrowser(t, ctx, name)
	tctx, cancel := context.WithTimeout(p.B.Context(), 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatalf("%s: viewport %dx%d: %v", name, w, h, err)
	}
	return p
}

// joinAs opens the meeting link of room as name in p and waits until it
// is connected and publishing.
func (p *participant) joinAs(ctx context.Context, srv *server, room, name string) clientState {
	p.t.Helper()
	link := fmt.Sprintf("%s/r/%s?name=%s", srv.URL, url.PathEscape(room), url.QueryEscape(name))
	if err := p.B.Navigate(ctx, link); err != nil {
		p.t.Fatal(err)
	}
	return p.waitState(ctx, 30*time.Second, "joined and publishing", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
	})
}

// hitTest reports whether a click at the centre of the element with
// testid would land on it (nothing covers it); "" when it does.
func (p *participant) hitTest(ctx context.Context, testid string) string {
	p.t.Helper()
	v, err := Eval[string](ctx, p.B, `(() => {
		const b = document.querySelector('[data-testid="`+testid+`"]');
		if (!b || b.offsetParent === null) return 'not shown';
		const r = b.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return 'outside the viewport at ' + x + ',' + y;
		const hit = document.elementFromPoint(x, y);
		if (b.contains(hit)) return '';
		return 'covered by ' + (hit ? hit.tagName + '.' + hit.className + ' ' + (hit.dataset.testid || '') : 'nothing');
	})()`)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// overflow reports horizontal overflow of the page or the chat panel.
func (p *participant) overflow(ctx context.Context) string {
	p.t.Helper()
	v, err := Eval[string](ctx, p.B, `(() => {
		const d = document.documentElement;
		if (d.scrollWidth > innerWidth) return 'page ' + d.scrollWidth + ' > ' + innerWidth;
		for (const e of document.querySelectorAll('[data-testid="chat-panel"], [data-testid="conv-list"], [data-testid="chat-pane"], .new-chat, .convs')) {
			if (e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1) return (e.dataset.testid || e.className) + ' ' + e.scrollWidth + ' > ' + e.clientWidth;
		}
		return '';
	})()`)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// TestUXPhoneChatPanel (bug 1): at phone size and at exactly 900 px the
// chat panel starts closed, and once open it leaves the Chat and Leave
// buttons clickable, has a close button, closes with Escape, and neither
// the conversation nor the list overflows sideways.
func TestUXPhoneChatPanel(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	for _, size := range []struct{ w, h int }{{390, 844}, {900, 700}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			p := startSized(t, ctx, "Pia", size.w, size.h)
			p.joinAs(ctx, srv, fmt.Sprintf("ux-phone-%d", size.w), "Pia")
			if visible(ctx, p, "chat-panel") {
				t.Errorf("chat panel open by default at %d px: it covers the call", size.w)
				if err := p.B.Click(ctx, `[data-testid="chat-toggle"]`); err != nil {
					t.Fatal(err)
				}
			}
			open := func() {
				t.Helper()
				if err := p.B.Click(ctx, `[data-testid="chat-toggle"]`); err != nil {
					t.Fatal(err)
				}
				p.waitVisible(ctx, "chat-panel", true)
			}
			check := func(what string) {
				t.Helper()
				for _, id := range []string{"leave-button", "chat-toggle"} {
					if why := p.hitTest(ctx, id); why != "" {
						t.Errorf("%s: %s not clickable: %s", what, id, why)
					}
				}
				if o := p.overflow(ctx); o != "" {
					t.Errorf("%s: horizontal overflow: %s", what, o)
				}
			}
			open()
			check("room conversation open")
			p.shot(ctx, "panel-open")
			if err := p.B.Click(ctx, `[data-testid="chat-panel"] [data-testid="back-button"]`); err != nil {
				t.Fatal(err)
			}
			check("conversation list")
			p.shot(ctx, "panel-list")
			// The Chat button closes it again.
			if err := p.B.Click(ctx, `[data-testid="chat-toggle"]`); err != nil {
				t.Fatal(err)
			}
			p.waitVisible(ctx, "chat-panel", false)
			// A close button in the panel.
			open()
			if err := p.B.Click(ctx, `[data-testid="chat-close"]`); err != nil {
				t.Fatal(err)
			}
			p.waitVisible(ctx, "chat-panel", false)
			// Escape.
			open()
			tctx, cancel := context.WithTimeout(p.B.Context(), 10*time.Second)
			defer cancel()
			if err := chromedp.Do(tctx, chromedp.KeyEvent("\x1b")); err != nil {
				t.Fatal(err)
			}
			p.waitVisible(ctx, "chat-panel", false)
		})
	}
}

// TestUXCancelOutgoingCall (bug 2): the caller cancels while it rings; the
// dialog goes, the ringback stops and the Call button works again.
func TestUXCancelOutgoingCall(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	kim := openChatPage(t, ctx, srv, "kim", "Kim", BrowserOptions{})
	lou := openChatPage(t, ctx, srv, "lou", "Lou", BrowserOptions{})
	kim.openDirect(ctx, "lou")
	kim.waitChat(ctx, chatLimit, "seeing Lou online", func(s chatState) bool { return s.Presence["lou"] == "online" })
	if err := kim.B.Click(ctx, `[data-testid="call-button"]`); err != nil {
		t.Fatal(err)
	}
	lou.waitVisible(ctx, "incoming-call", true)
	kim.waitChat(ctx, chatLimit, "ringing", func(s chatState) bool {
		return s.Calls != nil && s.Calls.Outgoing != nil && s.Calls.Outgoing.State == "ringing"
	})
	if err := kim.B.Click(ctx, `[data-testid="call-cancel"]`); err != nil {
		t.Fatal(err)
	}
	kim.waitVisible(ctx, "outgoing-call", false)
	kim.waitChat(ctx, chatLimit, "no longer calling", func(s chatState) bool {
		return s.Calls != nil && s.Calls.Outgoing == nil && s.Calls.Tone != "playing"
	})
	lou.waitVisible(ctx, "incoming-call", false)
	if !poll(ctx, 5*time.Second, func() bool {
		v, _ := Eval[bool](ctx, kim.B, `!document.querySelector('[data-testid="call-button"]').disabled`)
		return v
	}) {
		t.Errorf("Kim: the Call button stays disabled after cancelling")
	}
	kim.shot(ctx, "after-cancel")
}

// TestUXDirectMessageFromCall (bug 3): in a call, Uma picks Vic from the
// people in the call by name and messages him; he gets it. On /chat an
// identity nobody has ever used is refused with a clear message.
func TestUXDirectMessageFromCall(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "ux-dm"
	uma := join(t, ctx, srv, room, "Uma")
	vic := join(t, ctx, srv, room, "Vic")
	vicID := vic.waitChat(ctx, chatLimit, "online", func(s chatState) bool { return s.Self != nil }).Self.Identity
	uma.waitVisible(ctx, "chat-panel", true)
	if err := uma.B.Click(ctx, `[data-testid="chat-panel"] [data-testid="back-button"]`); err != nil {
		t.Fatal(err)
	}
	uma.shot(ctx, "people")
	sel := fmt.Sprintf(`[data-testid="person"][data-identity=%q] [data-testid="person-message"]`, vicID)
	if !poll(ctx, chatLimit, func() bool {
		v, _ := Eval[string](ctx, uma.B, `(document.querySelector('[data-testid="person"][data-identity=`+fmt.Sprintf("%q", vicID)+`]') || {}).textContent || ''`)
		return strings.Contains(v, "Vic")
	}) {
		t.Fatalf("Uma: Vic is not listed by name among the people in the call")
	}
	if err := uma.B.Click(ctx, sel); err != nil {
		t.Fatal(err)
	}
	st := uma.waitChat(ctx, chatLimit, "with a direct chat to Vic", func(s chatState) bool { return s.direct(vicID) != nil })
	convID := st.direct(vicID).ID
	uma.typeAndSend(ctx, "psst, Vic")
	vic.waitChat(ctx, chatLimit, "with Uma's direct message", func(s chatState) bool {
		c := s.conv(convID)
		return c != nil && c.Kind == "direct" && c.message("psst, Vic") != nil
	})

	// Typing his name (any case) into "new chat" finds the same person.
	if err := uma.B.Click(ctx, `[data-testid="chat-panel"] [data-testid="back-button"]`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(uma.B.Context(),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="chat-panel"] [data-testid="new-chat-input"]`), "vic", chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`[data-testid="chat-panel"] [data-testid="new-chat-button"]`), chromedp.NodeVisible),
	); err != nil {
		t.Fatal(err)
	}
	if !poll(ctx, chatLimit, func() bool {
		v, _ := Eval[string](ctx, uma.B, `window.parley.chat().visible`)
		return v == convID
	}) {
		st, _ := uma.chat(ctx)
		t.Errorf("Uma: typing \"vic\" did not open the chat with Vic: %s", describeChat(st))
	}

	// /chat: an identity no one has used is refused, and no chat opens.
	wes := openChatPage(t, ctx, srv, "wes", "Wes", BrowserOptions{})
	if err := chromedp.Do(wes.B.Context(),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="new-chat-input"]`), "nobody-at-all", chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`[data-testid="new-chat-button"]`), chromedp.NodeVisible),
	); err != nil {
		t.Fatal(err)
	}
	wes.waitVisible(ctx, "new-chat-error", true)
	msg, _ := Eval[string](ctx, wes.B, `document.querySelector('[data-testid="new-chat-error"]').textContent`)
	if !strings.Contains(msg, "nobody-at-all") || !strings.Contains(strings.ToLower(msg), "no one") {
		t.Errorf("Wes: refusal says %q, want it to name nobody-at-all and say no one is known by it", msg)
	}
	if s, _ := wes.chat(ctx); s.direct("nobody-at-all") != nil {
		t.Errorf("Wes: a conversation with a non-existent identity was opened")
	}
	wes.shot(ctx, "unknown-identity")
}

// TestUXReloadKeepsIdentity (bug 4): a guest reloads the page and is still
// the same person: her message stays hers, her direct chat is still there.
func TestUXReloadKeepsIdentity(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	const room = "ux-reload"
	xia := join(t, ctx, srv, room, "Xia")
	yan := join(t, ctx, srv, room, "Yan")
	before := xia.waitChat(ctx, chatLimit, "in the room chat", func(s chatState) bool { return s.Self != nil && s.RoomConversationID != "" })
	roomConv := before.RoomConversationID
	xia.typeAndSend(ctx, "mine before reload")
	xia.waitChat(ctx, chatLimit, "stored", func(s chatState) bool {
		m := s.conv(roomConv).message("mine before reload")
		return m != nil && m.Status == "sent"
	})
	yan.waitChat(ctx, chatLimit, "with Xia's message", func(s chatState) bool { return s.conv(roomConv).message("mine before reload") != nil })

	xia.joinAs(ctx, srv, room, "Xia")
	after := xia.waitChat(ctx, chatLimit, "showing the message again", func(s chatState) bool {
		return s.Self != nil && s.conv(roomConv).message("mine before reload") != nil
	})
	if after.Self.Identity != before.Self.Identity {
		t.Errorf("Xia: identity %q after reload, was %q", after.Self.Identity, before.Self.Identity)
	}
	if m := after.conv(roomConv).message("mine before reload"); !m.Own {
		t.Errorf("Xia: her own message shows as someone else's after reload")
	}
	yanSt := yan.waitState(ctx, chatLimit, "seeing one Xia", func(s clientState) bool { return len(s.Participants) == 1 })
	if yanSt.Participants[0].Name != "Xia" {
		t.Errorf("Yan: sees %q, want Xia", yanSt.Participants[0].Name)
	}
}

// denyMedia makes getUserMedia in p's page refuse as a browser does when
// the user blocked camera and microphone, until window.__allowMedia is
// set (the user changed the site setting).
func denyMedia(t *testing.T, p *participant) {
	t.Helper()
	tctx, cancel := context.WithTimeout(p.B.Context(), 10*time.Second)
	defer cancel()
	const script = `(() => {
		const md = navigator.mediaDevices;
		if (!md) return;
		const real = md.getUserMedia.bind(md);
		md.getUserMedia = (c) => window.__allowMedia ? real(c) : Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
	})();`
	if _, err := chromedp.Call(tctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		t.Fatal(err)
	}
}

// TestUXMediaDeniedNotice (bug 5): with camera and microphone blocked the
// notice stays after "Connected", says how to allow access, and Retry
// picks the devices up once allowed.
func TestUXMediaDeniedNotice(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	zoe := startBrowser(t, ctx, "Zoe")
	denyMedia(t, zoe)
	if err := zoe.B.Navigate(ctx, srv.URL+"/r/ux-denied?name=Zoe"); err != nil {
		t.Fatal(err)
	}
	zoe.waitState(ctx, 30*time.Second, "connected", func(s clientState) bool { return s.Status == "connected" })
	time.Sleep(2 * time.Second)
	zoe.waitVisible(ctx, "media-notice", true)
	text, _ := Eval[string](ctx, zoe.B, `document.querySelector('[data-testid="media-notice"]').textContent`)
	if !strings.Contains(text, "blocked") || !strings.Contains(strings.ToLower(text), "allow") {
		t.Errorf("Zoe: notice %q does not say access is blocked and how to allow it", text)
	}
	zoe.shot(ctx, "denied")
	if _, err := Eval[bool](ctx, zoe.B, `window.__allowMedia = true`); err != nil {
		t.Fatal(err)
	}
	if err := zoe.B.Click(ctx, `[data-testid="media-retry"]`); err != nil {
		t.Fatal(err)
	}
	zoe.waitVisible(ctx, "media-notice", false)
	if !poll(ctx, chatLimit, func() bool {
		v, _ := Eval[bool](ctx, zoe.B, `!document.querySelector('[data-testid="mic-toggle"]').disabled && !document.querySelector('[data-testid="cam-toggle"]').disabled`)
		return v
	}) {
		t.Errorf("Zoe: mic and camera buttons still disabled after Retry")
	}
	zoe.waitState(ctx, chatLimit, "publishing", func(s clientState) bool { return s.Publisher == "connected" })
}

// TestUXDevServerRestart (bug 6): the dev server (generated key) restarts.
// The page says it lost the connection and retries, does not show the
// others as camera-off meanwhile, gets a fresh guest token on its own and
// sends the message typed during the outage.
func TestUXDevServerRestart(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	// No api_keys: dev mode generates a new key on every start.
	srv := startServerWith(t, map[string]any{"signaling": map[string]any{"api_keys": nil}})
	const room = "ux-restart"
	amy := join(t, ctx, srv, room, "Amy")
	bo := join(t, ctx, srv, room, "Bo")
	waitSeesOthers(ctx, bo, amy)
	roomConv := amy.waitChat(ctx, chatLimit, "in the room chat", func(s chatState) bool { return s.RoomConversationID != "" }).RoomConversationID
	amyID := amy.waitChat(ctx, chatLimit, "known", func(s chatState) bool { return s.Self != nil }).Self.Identity

	srv.Kill(t)
	bo.waitState(ctx, 30*time.Second, "reconnecting", func(s clientState) bool { return s.Status == "reconnecting" })
	amy.waitState(ctx, 30*time.Second, "reconnecting", func(s clientState) bool { return s.Status == "reconnecting" })
	time.Sleep(2 * time.Second)
	banner, _ := Eval[string](ctx, bo.B, `(() => { const b = document.querySelector('[data-testid="banner"]'); return b && !b.hidden ? b.textContent : ''; })()`)
	if !strings.Contains(banner, "Connection lost") || !strings.Contains(banner, "attempt") {
		t.Errorf("Bo: banner %q while disconnected, want \"Connection lost, reconnecting (attempt N)\"", banner)
	}
	camOff, _ := Eval[string](ctx, bo.B, `[...document.querySelectorAll('[data-testid="tile"][data-self="false"]')].map(e => e.dataset.camMuted).join(',')`)
	if strings.Contains(camOff, "true") || camOff == "" {
		t.Errorf("Bo: remote tiles while disconnected have camMuted %q; Amy never turned her camera off", camOff)
	}
	bo.shot(ctx, "disconnected")
	amy.typeAndSend(ctx, "typed during the outage")

	srv.Restart(t)
	amy.waitState(ctx, 60*time.Second, "connected again", func(s clientState) bool { return s.Status == "connected" && s.Publisher == "connected" })
	bo.waitState(ctx, 60*time.Second, "connected again", func(s clientState) bool { return s.Status == "connected" && len(s.Participants) == 1 })
	bo.waitChat(ctx, 30*time.Second, "with the message typed during the outage", func(s chatState) bool {
		m := s.conv(roomConv).message("typed during the outage")
		return m != nil && m.Sender == amyID
	})
	amy.waitChat(ctx, chatLimit, "with the message stored", func(s chatState) bool {
		m := s.conv(roomConv).message("typed during the outage")
		return m != nil && m.Own && m.Status == "sent"
	})
	banner, _ = Eval[string](ctx, bo.B, `(() => { const b = document.querySelector('[data-testid="banner"]'); return b && !b.hidden ? b.textContent : ''; })()`)
	if banner != "" {
		t.Errorf("Bo: banner %q after reconnecting", banner)
	}
}

// TestUXTokenForAnotherRoom (bug 7): an invitation for room A opened at
// /r/B does not silently put the user in A: the page says so and offers A.
func TestUXTokenForAnotherRoom(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	cal := startBrowser(t, ctx, "Cal")
	tok := mintToken(t, "cal", "Cal", "ux-room-a", callUser)
	if err := cal.B.Navigate(ctx, srv.URL+"/r/ux-room-b#token="+tok); err != nil {
		t.Fatal(err)
	}
	cal.waitVisible(ctx, "room-mismatch", true)
	text, _ := Eval[string](ctx, cal.B, `document.querySelector('[data-testid="room-mismatch"]').textContent`)
	if !strings.Contains(text, "ux-room-a") || !strings.Contains(text, "ux-room-b") {
		t.Errorf("Cal: mismatch notice %q should name both rooms", text)
	}
	time.Sleep(time.Second)
	if s, _ := cal.state(ctx); s.Status == "connected" {
		t.Fatalf("Cal: joined %q while the address says ux-room-b", s.Room)
	}
	cal.shot(ctx, "mismatch")
	if err := cal.B.Click(ctx, `[data-testid="room-mismatch-join"]`); err != nil {
		t.Fatal(err)
	}
	cal.waitState(ctx, 30*time.Second, "in room A", func(s clientState) bool { return s.Status == "connected" && s.Room == "ux-room-a" })
	if path, _ := Eval[string](ctx, cal.B, `location.pathname`); path != "/r/ux-room-a" {
		t.Errorf("Cal: address %q in room A", path)
	}
}

// TestUXFriendlyErrors (bug 8): an expired or broken link, an unknown
// path and a bad room name each get words a person understands.
func TestUXFriendlyErrors(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	srv := startServer(t)
	dan := startBrowser(t, ctx, "Dan")

	// An operator's link that expired an hour ago (signed as KeySet.Issue
	// does, which only makes tokens valid from now), and one whose
	// signature is wrong.
	now := time.Now()
	old := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": testAPIKey, "sub": "dan", "name": "Dan", "room": "ux-expired", "grants": callUser,
		"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix(),
	})
	old.Header["kid"] = testAPIKey
	expired, err := old.SignedString([]byte(testAPISecret))
	if err != nil {
		t.Fatal(err)
	}
	good := mintToken(t, "dan", "Dan", "ux-broken", callUser)
	broken := good[:strings.LastIndex(good, ".")+1] + "bm90LXRoZS1yaWdodC1zaWduYXR1cmUtYXQtYWxs"
	for _, c := range []struct{ room, token, want string }{
		{"ux-expired", expired, "This link has expired, ask for a new one."},
		{"ux-broken", broken, "This link is not valid, ask for a new one."},
	} {
		if err := dan.B.Navigate(ctx, srv.URL+"/r/"+c.room+"#token="+c.token); err != nil {
			t.Fatal(err)
		}
		if !poll(ctx, 15*time.Second, func() bool {
			v, _ := Eval[string](ctx, dan.B, `(() => { const e = document.querySelector('[data-testid="ended"]'); return e && !e.hidden ? document.querySelector('[data-testid="ended-message"]').textContent : ''; })()`)
			return v == c.want
		}) {
			v, _ := Eval[string](ctx, dan.B, `document.body.innerText`)
			t.Errorf("%s: page says %q, want %q", c.room, v, c.want)
		}
		dan.shot(ctx, c.room)
	}

	if err := dan.B.Navigate(ctx, srv.URL+"/no/such/page"); err != nil {
		t.Fatal(err)
	}
	body, _ := Eval[string](ctx, dan.B, `document.body.innerText`)
	if strings.Contains(body, "404 page not found") || !strings.Contains(body, "Page not found") {
		t.Errorf("unknown path shows %q, want a styled \"Page not found\" page", body)
	}
	if bg, _ := Eval[string](ctx, dan.B, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(15, 17, 21)" {
		t.Errorf("not-found page background %q: not styled like the app", bg)
	}
	dan.shot(ctx, "not-found")

	if err := dan.B.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(dan.B.Context(), 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="join-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="name-input"]`), "Dan"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="room-input"]`), "team.standup"),
	); err != nil {
		t.Fatal(err)
	}
	if err := dan.B.Click(ctx, `[data-testid="join-button"]`); err != nil {
		t.Fatal(err)
	}
	dan.waitVisible(ctx, "landing-error", true)
	msg, _ := Eval[string](ctx, dan.B, `document.querySelector('[data-testid="landing-error"]').textContent`)
	const rule = "A room name uses letters, digits, - and _ only (no spaces or dots), up to 64 characters."
	if msg != rule {
		t.Errorf("landing: room error %q, want %q", msg, rule)
	}
	dan.shot(ctx, "room-rule")
}

// TestUXChatPageNothingSelected: /chat with no conversation picked shows
// the prompt alone, without Call, "Load earlier" or a composer.
func TestUXChatPageNothingSelected(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	srv := startServer(t)
	eli := startBrowser(t, ctx, "Eli")
	check := func(when string) {
		t.Helper()
		for _, id := range []string{"call-button", "load-older", "composer-input", "composer-send"} {
			if visible(ctx, eli, id) {
				t.Errorf("Eli %s: %s shown with no conversation selected", when, id)
			}
		}
	}
	// Right after the page loaded: the join is still under way.
	if err := eli.B.Navigate(ctx, srv.URL+"/chat#token="+mintToken(t, "eli", "Eli", "", chatOnly)); err != nil {
		t.Fatal(err)
	}
	check("while connecting")
	eli.waitChat(ctx, 20*time.Second, "online", func(s chatState) bool { return s.Status == "online" })
	check("online")
	eli.shot(ctx, "nothing-selected")
}
