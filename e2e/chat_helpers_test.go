package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/signaling/auth"
)

// chatLimit bounds how long a chat event may take to show up in another
// browser; deliveries take milliseconds, the margin covers a loaded host.
const chatLimit = 15 * time.Second

// mintToken signs a token with the test API key, as an operator's
// backend would. room "" with the chat grant is a messaging-only token.
func mintToken(t *testing.T, identity, name, room string, g auth.Grants) string {
	t.Helper()
	keys, err := auth.NewKeySet(map[string]string{testAPIKey: testAPISecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Issue(testAPIKey, auth.Claims{Identity: identity, Name: name, Room: room, Grants: g}, time.Hour)
	if err != nil {
		t.Fatalf("mint token for %s: %v", identity, err)
	}
	return tok
}

var (
	chatOnly = auth.Grants{Chat: true}
	callUser = auth.Grants{Publish: true, Subscribe: true, Chat: true}
)

// chatMsg and chatConv mirror window.parley.chat() (web/static/chat.js).
type chatMsg struct {
	Seq         int64  `json:"seq"`
	ClientMsgID string `json:"clientMsgId"`
	Kind        string `json:"kind"`
	Text        string `json:"text"`
	Sender      string `json:"sender"`
	Own         bool   `json:"own"`
	Status      string `json:"status"`
	Deleted     bool   `json:"deleted"`
	Edited      bool   `json:"edited"`
}

// message finds a conversation's message by its text.
func (c *chatConv) message(text string) *chatMsg {
	if c == nil {
		return nil
	}
	for i := range c.Messages {
		if c.Messages[i].Text == text {
			return &c.Messages[i]
		}
	}
	return nil
}

type chatConv struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Peer     string    `json:"peer"`
	Room     string    `json:"room"`
	Title    string    `json:"title"`
	LastSeq  int64     `json:"lastSeq"`
	Held     int64     `json:"held"`
	Read     int64     `json:"read"`
	Unread   int       `json:"unread"`
	More     bool      `json:"more"`
	Typing   []string  `json:"typing"`
	Messages []chatMsg `json:"messages"`
}

type callsState struct {
	Incoming []struct {
		CallID string `json:"callId"`
		Caller string `json:"caller"`
		Name   string `json:"name"`
	} `json:"incoming"`
	Outgoing *struct {
		CallID string `json:"callId"`
		To     string `json:"to"`
		State  string `json:"state"`
	} `json:"outgoing"`
	LastEnded *struct {
		Reason string `json:"reason"`
		Text   string `json:"text"`
	} `json:"lastEnded"`
	Tone string `json:"tone"`
}

type chatState struct {
	Status string `json:"status"`
	Self   *struct {
		Identity string `json:"identity"`
	} `json:"self"`
	Syncs              int               `json:"syncs"`
	GapFills           int               `json:"gapFills"`
	RoomConversationID string            `json:"roomConversationId"`
	Persistent         bool              `json:"persistent"`
	Presence           map[string]string `json:"presence"`
	Conversations      []chatConv        `json:"conversations"`
	Link               struct {
		Status     string `json:"status"`
		Reconnects int    `json:"reconnects"`
	} `json:"link"`
	Calls *callsState `json:"calls"`
}

func (s chatState) conv(id string) *chatConv {
	for i := range s.Conversations {
		if s.Conversations[i].ID == id {
			return &s.Conversations[i]
		}
	}
	return nil
}

func (s chatState) direct(peer string) *chatConv {
	for i := range s.Conversations {
		if s.Conversations[i].Kind == "direct" && s.Conversations[i].Peer == peer {
			return &s.Conversations[i]
		}
	}
	return nil
}

// texts lists the text messages of a conversation in display order.
func (c *chatConv) texts() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, m := range c.Messages {
		if m.Kind == "text" {
			out = append(out, m.Text)
		}
	}
	return out
}

func (c *chatConv) kinds(kind string) int {
	n := 0
	if c != nil {
		for _, m := range c.Messages {
			if m.Kind == kind {
				n++
			}
		}
	}
	return n
}

func (p *participant) chat(ctx context.Context) (chatState, error) {
	return Eval[chatState](ctx, p.B, `window.parley.chat() || {}`)
}

// waitChat polls window.parley.chat() until ok or the limit.
func (p *participant) waitChat(ctx context.Context, limit time.Duration, what string, ok func(chatState) bool) chatState {
	p.t.Helper()
	var last chatState
	var lastErr error
	if !poll(ctx, limit, func() bool {
		last, lastErr = p.chat(ctx)
		return lastErr == nil && ok(last)
	}) {
		p.t.Fatalf("%s: chat not %s within %v: %s (err %v)", p.Name, what, limit, describeChat(last), lastErr)
	}
	return last
}

func describeChat(s chatState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status=%s link=%s/%d", s.Status, s.Link.Status, s.Link.Reconnects)
	for _, c := range s.Conversations {
		fmt.Fprintf(&b, "\n  %s %s peer=%s last=%d held=%d read=%d unread=%d:", c.Kind, c.ID, c.Peer, c.LastSeq, c.Held, c.Read, c.Unread)
		for _, m := range c.Messages {
			text := m.Text
			if len(text) > 40 {
				text = text[:40] + "…"
			}
			fmt.Fprintf(&b, " [%d %s %q %s]", m.Seq, m.Kind, text, m.Status)
		}
	}
	if c := s.Calls; c != nil {
		fmt.Fprintf(&b, "\n  calls: incoming %+v tone %s", c.Incoming, c.Tone)
		if c.Outgoing != nil {
			fmt.Fprintf(&b, " outgoing %+v", *c.Outgoing)
		}
		if c.LastEnded != nil {
			fmt.Fprintf(&b, " last ended %+v", *c.LastEnded)
		}
	}
	return b.String()
}

// openChatPage starts a browser on /chat with a messaging-only token and
// waits until its conversations are synced.
func openChatPage(t *testing.T, ctx context.Context, srv *server, identity, name string, opts BrowserOptions) *participant {
	t.Helper()
	return openChatPageAt(t, ctx, srv, "/chat", identity, name, opts)
}

// openChatPageAt is openChatPage entering at path ("/chat" or "/": the
// landing page moves a messaging-only token to /chat).
func openChatPageAt(t *testing.T, ctx context.Context, srv *server, path, identity, name string, opts BrowserOptions) *participant {
	t.Helper()
	b, err := StartBrowser(context.Background(), name, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: name, B: b}
	t.Cleanup(func() { p.finish(ctx) })
	tok := mintToken(t, identity, name, "", chatOnly)
	if err := b.Navigate(ctx, srv.URL+path+"#token="+tok); err != nil {
		t.Fatal(err)
	}
	p.waitChat(ctx, 20*time.Second, "online", func(s chatState) bool { return s.Status == "online" })
	return p
}

// joinWithToken opens a meeting link with an operator-issued token.
func joinWithToken(t *testing.T, ctx context.Context, srv *server, room, name, token, query string) *participant {
	t.Helper()
	b, err := StartBrowser(context.Background(), name, BrowserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &participant{t: t, owner: t, Name: name, B: b}
	t.Cleanup(func() { p.finish(ctx) })
	link := fmt.Sprintf("%s/r/%s%s#token=%s", srv.URL, url.PathEscape(room), query, token)
	if err := b.Navigate(ctx, link); err != nil {
		t.Fatal(err)
	}
	p.waitState(ctx, 30*time.Second, "joined and publishing", func(s clientState) bool {
		return s.Status == "connected" && s.Self != nil && s.Publisher == "connected"
	})
	return p
}

// typeAndSend writes text into the open conversation's composer with
// real key events and presses the send button.
func (p *participant) typeAndSend(ctx context.Context, text string) {
	p.t.Helper()
	tctx, cancel := context.WithTimeout(p.B.Context(), 20*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := chromedp.Do(tctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="composer-input"]`), text, chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`[data-testid="composer-send"]`), chromedp.NodeVisible),
	); err != nil {
		p.t.Fatalf("%s: send %q: %v", p.Name, text, err)
	}
}

// openConversation clicks a conversation in the list (showing the list
// first in the call page's panel).
func (p *participant) openConversation(ctx context.Context, convID string) {
	p.t.Helper()
	if back, _ := Eval[bool](ctx, p.B, `(() => { const b = document.querySelector('[data-testid="chat-panel"] [data-testid="back-button"]'); return !!b && b.offsetParent !== null; })()`); back {
		if err := p.B.Click(ctx, `[data-testid="chat-panel"] [data-testid="back-button"]`); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := p.B.Click(ctx, fmt.Sprintf(`[data-testid="conv-item"][data-conversation=%q]`, convID)); err != nil {
		p.t.Fatal(err)
	}
}

// openDirect types an identity into "new chat" and waits for the direct
// conversation to be selected.
func (p *participant) openDirect(ctx context.Context, identity string) string {
	p.t.Helper()
	if back, _ := Eval[bool](ctx, p.B, `(() => { const b = document.querySelector('[data-testid="chat-panel"] [data-testid="back-button"]'); return !!b && b.offsetParent !== null; })()`); back {
		if err := p.B.Click(ctx, `[data-testid="chat-panel"] [data-testid="back-button"]`); err != nil {
			p.t.Fatal(err)
		}
	}
	tctx, cancel := context.WithTimeout(p.B.Context(), 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="new-chat-input"]`), identity, chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`[data-testid="new-chat-button"]`), chromedp.NodeVisible),
	); err != nil {
		p.t.Fatalf("%s: open direct chat with %s: %v", p.Name, identity, err)
	}
	st := p.waitChat(ctx, chatLimit, "with a direct conversation to "+identity, func(s chatState) bool { return s.direct(identity) != nil })
	id := st.direct(identity).ID
	if !poll(ctx, 5*time.Second, func() bool {
		v, _ := Eval[string](ctx, p.B, `window.parley.chat().visible`)
		return v == id
	}) {
		p.t.Fatalf("%s: the direct conversation with %s did not open", p.Name, identity)
	}
	return id
}

// domTexts reads the message texts the page shows, in order.
// waitDOMTexts polls the rendered message list until it equals want (the
// page renders a moment after the state the debug hook reports) and
// returns what it showed last.
func (p *participant) waitDOMTexts(ctx context.Context, limit time.Duration, want []string) []string {
	deadline := time.Now().Add(limit)
	for {
		got := p.domTexts(ctx)
		if slices.Equal(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *participant) domTexts(ctx context.Context) []string {
	v, err := Eval[[]string](ctx, p.B, `[...document.querySelectorAll('[data-testid="message"][data-kind="text"] [data-testid="message-text"]')].filter(e => e.offsetParent !== null).map(e => e.textContent)`)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}
