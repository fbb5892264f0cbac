package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// pipeListener is a net.Listener whose connections are in-memory pipes,
// so a Server can Serve inside a synctest bubble: pipe reads and writes
// block on channels, which the fake clock understands, and deadlines are
// fake-clock timers.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// fakeClockEnv is a Server serving a pipeListener inside the bubble.
type fakeClockEnv struct {
	t    *testing.T
	srv  *Server
	keys *auth.KeySet
	ln   *pipeListener
}

// startFakeClock runs a Server with the default timings (the fake clock
// makes them free) until the test's bubble ends.
func startFakeClock(t *testing.T) *fakeClockEnv {
	cfg := DefaultConfig()
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Deps{Media: newFakeMedia(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ln := newPipeListener()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fakeClockEnv{t: t, srv: srv, keys: keys, ln: ln}
}

// dial opens a WebSocket to the server over a pipe.
func (e *fakeClockEnv) dial() *websocket.Conn {
	e.t.Helper()
	d := websocket.Dialer{NetDialContext: e.ln.dial, HandshakeTimeout: time.Minute}
	ws, resp, err := d.Dial("ws://parley.test/ws", http.Header{})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	_ = resp.Body.Close()
	e.t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// read returns the next message and how long after start it arrived.
func read(t *testing.T, ws *websocket.Conn, start time.Time) (msg, time.Duration) {
	t.Helper()
	_, raw, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read after %s: %v", time.Since(start), err)
	}
	var m msg
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("invalid JSON %q", raw)
	}
	return m, time.Since(start)
}

func write(t *testing.T, ws *websocket.Conn, typ string, data any) {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"type": typ, "id": "1", "data": data})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, raw); err != nil {
		t.Fatalf("write %s: %v", typ, err)
	}
}

// A connection that sends nothing is told "unauthorized" exactly at
// join_timeout and closed with 1008.
func TestJoinTimeoutOnFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startFakeClock(t)
		start := time.Now()
		ws := env.dial()
		m, at := read(t, ws, start)
		var eb proto.ErrorBody
		m.decode(t, &eb)
		if m.Type != proto.TypeError || eb.Code != proto.CodeUnauthorized {
			t.Fatalf("got %s %s, want error unauthorized", m.Type, m.Data)
		}
		if want := env.srv.cfg.JoinTimeout; at != want {
			t.Fatalf("refused after %s, want exactly join_timeout %s", at, want)
		}
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("connection ended with %v, want close 1008", err)
		}
	})
}

// A joined client is pinged every ping_interval; one that answers stays
// however long it runs, one that falls silent gets "bye" "timeout"
// exactly ping_timeout after its last message.
func TestHeartbeatOnFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startFakeClock(t)
		cfg := env.srv.cfg
		join := func(identity string) (*websocket.Conn, time.Time) {
			ws := env.dial()
			tok, err := env.keys.Issue(testKeyID, auth.Claims{Identity: identity, Room: "r", Grants: allGrants}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			write(t, ws, proto.TypeJoin, proto.JoinBody{Token: tok, Protocol: proto.ProtocolVersion})
			joinedAt := time.Now()
			if m, _ := read(t, ws, joinedAt); m.Type != proto.TypeJoined {
				t.Fatalf("got %s %s, want joined", m.Type, m.Data)
			}
			return ws, joinedAt
		}

		// ada answers every ping, on her own goroutine, until she sees
		// bob leave; pings come exactly every ping_interval.
		ada, start := join("ada")
		adaErr := make(chan error, 1)
		go func() {
			pings := 0
			for {
				_, raw, err := ada.ReadMessage()
				if err != nil {
					adaErr <- err
					return
				}
				var m msg
				_ = json.Unmarshal(raw, &m)
				switch m.Type {
				case proto.TypePing:
					pings++
					if at, want := time.Since(start), time.Duration(pings)*cfg.PingInterval; at != want {
						adaErr <- fmt.Errorf("ping %d after %s, want %s", pings, at, want)
						return
					}
					if err := ada.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong","data":`+string(m.Data)+`}`)); err != nil {
						adaErr <- err
						return
					}
				case proto.TypeParticipantLeft:
					var left proto.ParticipantLeftBody
					_ = json.Unmarshal(m.Data, &left)
					if left.Identity != "bob" {
						adaErr <- fmt.Errorf("%s left", left.Identity)
					} else {
						adaErr <- nil
					}
					return
				case proto.TypeToken, proto.TypeParticipantJoined:
				default:
					adaErr <- fmt.Errorf("answering client got %s %s", m.Type, m.Data)
					return
				}
			}
		}()

		// Ten minutes of fake time later, bob joins and answers nothing:
		// pings come, then bye exactly ping_timeout after his join.
		time.Sleep(10 * time.Minute)
		bob, since := join("bob")
		// Silent means no WebSocket pongs either (and a pipe, unlike a
		// socket, would block the pong once the server stops reading).
		bob.SetPingHandler(func(string) error { return nil })
		for {
			m, at := read(t, bob, since)
			if m.Type == proto.TypePing || m.Type == proto.TypeToken {
				if at > cfg.PingTimeout {
					t.Fatalf("%s after %s of silence; ping_timeout is %s", m.Type, at, cfg.PingTimeout)
				}
				continue
			}
			var b proto.ByeBody
			m.decode(t, &b)
			if m.Type != proto.TypeBye || b.Reason != proto.ByeTimeout {
				t.Fatalf("got %s %s, want bye timeout", m.Type, m.Data)
			}
			if at != cfg.PingTimeout {
				t.Fatalf("bye after %s of silence, want exactly ping_timeout %s", at, cfg.PingTimeout)
			}
			break
		}
		// ada, who kept answering, is still there and learns bob left.
		if err := <-adaErr; err != nil {
			t.Fatalf("answering client: %v", err)
		}
	})
}
