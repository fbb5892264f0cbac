package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

const (
	testKeyID     = "testkey"
	testSecret    = "0123456789abcdef0123456789abcdef"
	waitLimit     = 5 * time.Second
	otherSecretXX = "ffffffffffffffffffffffffffffffff"
)

// fakeMedia stands in for the SFU: it records what signaling asks of it
// and lets tests raise SFU events through the JoinOptions it received.
type fakeMedia struct {
	mu      sync.Mutex
	peers   map[string]*fakePeer // by participant id
	joins   int
	stats   map[string][]sfu.TrackStats
	joinErr error
}

func newFakeMedia() *fakeMedia {
	return &fakeMedia{peers: map[string]*fakePeer{}, stats: map[string][]sfu.TrackStats{}}
}

func (m *fakeMedia) Join(room, pid string, opts sfu.JoinOptions) (MediaPeer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.joinErr != nil {
		return nil, m.joinErr
	}
	p := &fakePeer{room: room, pid: pid, opts: opts, muted: map[string]bool{}}
	m.peers[pid] = p
	m.joins++
	return p, nil
}

func (m *fakeMedia) RoomStats(room string) []sfu.TrackStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats[room]
}

func (m *fakeMedia) peer(t testing.TB, pid string) *fakePeer {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[pid]
	if p == nil {
		t.Fatalf("no media peer for %s", pid)
	}
	return p
}

type fakePeer struct {
	room, pid string
	opts      sfu.JoinOptions

	mu          sync.Mutex
	offers      []string
	answers     []string
	candidates  []string // "target:candidate"
	restarts    int
	unpublished []string
	muted       map[string]bool
	views       map[string]string // SetView's last report per track, "WxH" or "hidden"
	screens     []string          // SetScreenShare's tracks, in call order
	closed      bool
}

func (p *fakePeer) SetView(sid string, w, h int, visible bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.views == nil {
		p.views = map[string]string{}
	}
	p.views[sid] = fmt.Sprintf("%dx%d", w, h)
	if !visible {
		p.views[sid] = "hidden"
	}
	return nil
}

func (p *fakePeer) SetScreenShare(sid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.screens = append(p.screens, sid)
	return nil
}

// screenShares is the set of tracks marked as screen shares, sorted.
func (p *fakePeer) screenShares() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.screens)
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *fakePeer) view(sid string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.views[sid]
}

func (p *fakePeer) HandleOffer(o webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o.SDP == "bad" {
		return webrtc.SessionDescription{}, errors.New("unparsable SDP")
	}
	p.offers = append(p.offers, o.SDP)
	return webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "answer-to:" + o.SDP}, nil
}

func (p *fakePeer) HandleAnswer(a webrtc.SessionDescription) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.Type != webrtc.SDPTypeAnswer {
		return errors.New("not an answer")
	}
	p.answers = append(p.answers, a.SDP)
	return nil
}

func (p *fakePeer) AddICECandidate(target sfu.Target, c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.candidates = append(p.candidates, target.String()+":"+c.Candidate)
	return nil
}

func (p *fakePeer) RestartICE() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restarts++
	return nil
}

func (p *fakePeer) Unpublish(sid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpublished = append(p.unpublished, sid)
	return nil
}

func (p *fakePeer) SetTrackMuted(sid string, muted bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.muted[sid] = muted
	return nil
}

func (p *fakePeer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

func (p *fakePeer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Most WebSocket tests run on real loopback sockets, not inside
// testing/synctest: gorilla blocks in real network syscalls, which synctest
// does not treat as durably blocked, so its fake clock would never advance.
// Timings are therefore short real durations with bounded waits. Tests of
// timing itself serve over in-memory pipes on the fake clock instead
// (fakeclock_test.go).
type testEnv struct {
	t     testing.TB
	srv   *Server
	media *fakeMedia
	keys  *auth.KeySet
	reg   *prometheus.Registry
	base  string // http://127.0.0.1:port
	stop  func()
}

// testConfig has short timings so tests run fast; ping timeout stays far
// above test durations unless a test lowers it.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.PingInterval = 200 * time.Millisecond
	cfg.PingTimeout = 10 * time.Second
	cfg.JoinTimeout = 5 * time.Second
	cfg.WriteTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 2 * time.Second
	return cfg
}

func startServer(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	return startServerWith(t, mutate, nil)
}

// startServerWith starts a server whose Deps.Chat is chatSvc (nil: chat off).
func startServerWith(t testing.TB, mutate func(*Config), chatSvc *chat.Service) *testEnv {
	t.Helper()
	return startServerDeps(t, mutate, func(d *Deps) { d.Chat = chatSvc })
}

// startServerDeps starts a server with deps changed by withDeps.
func startServerDeps(t testing.TB, mutate func(*Config), withDeps func(*Deps)) *testEnv {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	media := newFakeMedia()
	web := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "web client") })
	deps := Deps{Media: media, Keys: keys, Registry: reg, Gatherer: reg, Web: web, ICEServers: staticICE{}}
	if withDeps != nil {
		withDeps(&deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.RunInBackground(t, "Run", srv.Run)
	wctx, wcancel := context.WithTimeout(context.Background(), waitLimit)
	defer wcancel()
	if srv.WaitAddr(wctx) == nil {
		t.Fatal("server did not start listening")
	}
	return &testEnv{t: t, srv: srv, media: media, keys: keys, reg: reg, base: "http://" + srv.Addr().String(), stop: stop}
}

type staticICE struct{}

func (staticICE) ICEServers(identity string) []webrtc.ICEServer {
	return []webrtc.ICEServer{{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "u-" + identity, Credential: "secret"}}
}

func (e *testEnv) token(identity, room string, g auth.Grants) string {
	e.t.Helper()
	tok, err := e.keys.Issue(testKeyID, auth.Claims{Identity: identity, Name: strings.ToUpper(identity[:1]) + identity[1:], Room: room, Grants: g}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

var allGrants = auth.Grants{Publish: true, Subscribe: true, Chat: true}

type msg struct {
	Type string          `json:"type"`
	Re   string          `json:"re"`
	Data json.RawMessage `json:"data"`
}

func (m msg) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(m.Data, v); err != nil {
		t.Fatalf("decode %s data %s: %v", m.Type, m.Data, err)
	}
}

type client struct {
	t        testing.TB
	ws       *websocket.Conn
	autoPong bool
	sid      string
}

func (e *testEnv) dial(origin string) (*client, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(strings.Replace(e.base, "http", "ws", 1)+"/ws", h)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: e.t, ws: ws, autoPong: true}
	e.t.Cleanup(func() { _ = ws.Close() })
	return c, resp, nil
}

func (e *testEnv) mustDial() *client {
	e.t.Helper()
	c, _, err := e.dial(e.base)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// join connects, joins and returns the client with its "joined" body.
func (e *testEnv) join(identity, room string, g auth.Grants) (*client, proto.JoinedBody) {
	e.t.Helper()
	c := e.mustDial()
	c.send("join", "j", proto.JoinBody{Token: e.token(identity, room, g), Protocol: 1})
	m := c.expect("joined")
	if m.Re != "j" {
		e.t.Fatalf("joined re = %q", m.Re)
	}
	var jb proto.JoinedBody
	m.decode(e.t, &jb)
	c.sid = jb.Participant.SID
	return c, jb
}

func (c *client) send(typ, id string, data any) {
	c.t.Helper()
	env := map[string]any{"type": typ}
	if id != "" {
		env["id"] = id
	}
	if data != nil {
		env["data"] = data
	}
	raw, err := json.Marshal(env)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(raw)
}

func (c *client) sendRaw(raw []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, raw); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one message; heartbeat pings are answered (if autoPong)
// and skipped, as are token refreshes unless asked for.
func (c *client) next(keepTokens bool) (msg, error) {
	deadline := time.Now().Add(waitLimit)
	for {
		_ = c.ws.SetReadDeadline(deadline)
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return msg{}, err
		}
		var m msg
		if err := json.Unmarshal(raw, &m); err != nil {
			return msg{}, fmt.Errorf("server sent invalid JSON %q: %w", raw, err)
		}
		switch {
		case m.Type == "ping":
			if c.autoPong {
				var pb proto.PingBody
				_ = json.Unmarshal(m.Data, &pb)
				c.send("pong", "", pb)
			}
			continue
		case m.Type == "token" && !keepTokens:
			continue
		}
		return m, nil
	}
}

func (c *client) expect(typ string) msg {
	c.t.Helper()
	m, err := c.next(typ == "token")
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if m.Type != typ {
		c.t.Fatalf("got %s %s, want %s", m.Type, m.Data, typ)
	}
	return m
}

func (c *client) expectError(code string) proto.ErrorBody {
	c.t.Helper()
	m := c.expect("error")
	var eb proto.ErrorBody
	m.decode(c.t, &eb)
	if eb.Code != code {
		c.t.Fatalf("error code %q (%s), want %q", eb.Code, eb.Message, code)
	}
	return eb
}

// expectClose reads until the socket closes and checks the close code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	for {
		_, err := c.next(true)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d, want %d", ce.Code, code)
		}
		return
	}
}

func (c *client) expectBye(reason string) {
	c.t.Helper()
	m := c.expect("bye")
	var b proto.ByeBody
	m.decode(c.t, &b)
	if b.Reason != reason {
		c.t.Fatalf("bye reason %q, want %q", b.Reason, reason)
	}
}
