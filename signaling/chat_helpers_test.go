package signaling

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/sqlitestore"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// chatEnv is a signaling server with the real chat service over a SQLite
// store in a temporary directory.
type chatEnv struct {
	*testEnv
	svc *chat.Service
}

func startChatServer(t testing.TB, mutate func(*Config), chatMutate func(*chat.Config)) *chatEnv {
	t.Helper()
	cfg := chat.DefaultConfig()
	cfg.DataDir = t.TempDir()
	if chatMutate != nil {
		chatMutate(&cfg)
	}
	st, err := sqlitestore.Open(t.Context(), filepath.Join(cfg.DataDir, "chat.db"), sqlitestore.OptionsFromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the server's cleanup, so it runs after Run returned.
	t.Cleanup(func() { _ = st.Close() })
	svc, err := chat.New(cfg, chat.Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	env := &chatEnv{testEnv: startServerWith(t, mutate, svc), svc: svc}
	// The tests' people have been issued tokens by the operator (as POST
	// /api/admin/tokens records), so they can be messaged before they
	// first connect; TestChatUnknownIdentityRefused covers the others.
	for _, id := range []string{"alice", "bob", "carol", "dave", "erin"} {
		env.srv.rememberIdentity(id)
	}
	return env
}

var chatOnly = auth.Grants{Chat: true}

// cc is a test client with its own reader goroutine, so tests can wait
// for one message type while others (presence, typing) arrive in
// between, and can check that something does not arrive without
// breaking the connection with a read deadline.
type cc struct {
	t      testing.TB
	ws     *websocket.Conn
	wmu    sync.Mutex
	in     chan msg
	done   chan struct{}
	joined proto.JoinedBody
	// backlog keeps messages skipped by one wait for the next ones, so
	// waiting for a reply never loses a push that arrived before it.
	backlog []msg
}

func (e *testEnv) dialCC() *cc {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.base, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &cc{t: e.t, ws: ws, in: make(chan msg, 4096), done: make(chan struct{})}
	go c.readLoop()
	e.t.Cleanup(c.close)
	return c
}

func (c *cc) readLoop() {
	defer close(c.done)
	defer close(c.in)
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m msg
		if json.Unmarshal(raw, &m) != nil {
			c.t.Errorf("server sent invalid JSON %q", raw)
			return
		}
		switch m.Type {
		case "ping":
			var pb proto.PingBody
			_ = json.Unmarshal(m.Data, &pb)
			c.trySend("pong", "", pb)
			continue
		case "token":
			continue
		}
		select {
		case c.in <- m:
		default:
			c.t.Errorf("test client buffer full; dropping %s", m.Type)
		}
	}
}

func (c *cc) close() {
	_ = c.ws.Close()
	<-c.done
}

func (c *cc) trySend(typ, id string, data any) error {
	env := map[string]any{"type": typ}
	if id != "" {
		env["id"] = id
	}
	if data != nil {
		env["data"] = data
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, raw)
}

func (c *cc) send(typ, id string, data any) {
	c.t.Helper()
	if err := c.trySend(typ, id, data); err != nil {
		c.t.Fatalf("send %s: %v", typ, err)
	}
}

// waitFor returns the first message matching pred; others stay in the
// backlog for later waits.
func (c *cc) waitFor(what string, pred func(msg) bool) msg {
	c.t.Helper()
	for i, m := range c.backlog {
		if pred(m) {
			c.backlog = append(c.backlog[:i:i], c.backlog[i+1:]...)
			return m
		}
	}
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.t.Fatalf("connection closed while waiting for %s", what)
			}
			if pred(m) {
				return m
			}
			c.backlog = append(c.backlog, m)
		case <-timer.C:
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitType waits for a message of type typ.
func (c *cc) waitType(typ string) msg {
	c.t.Helper()
	return c.waitFor(typ, func(m msg) bool { return m.Type == typ })
}

// waitRe waits for the reply to request id.
func (c *cc) waitRe(id string) msg {
	c.t.Helper()
	return c.waitFor("reply to "+id, func(m msg) bool { return m.Re == id })
}

// waitError waits for an error reply with code.
func (c *cc) waitError(code string) proto.ErrorBody {
	c.t.Helper()
	m := c.waitType("error")
	var eb proto.ErrorBody
	m.decode(c.t, &eb)
	if eb.Code != code {
		c.t.Fatalf("error %q (%s), want %q", eb.Code, eb.Message, code)
	}
	return eb
}

// none checks that no message of type typ arrives within d.
func (c *cc) none(typ string, d time.Duration) {
	c.t.Helper()
	c.noneFn(typ, func(m msg) bool { return m.Type == typ }, d)
}

// noneFn checks that no message matching pred arrives within d.
func (c *cc) noneFn(what string, pred func(msg) bool, d time.Duration) {
	c.t.Helper()
	for _, m := range c.backlog {
		if pred(m) {
			c.t.Fatalf("unexpected %s: %s %s", what, m.Type, m.Data)
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				return
			}
			if pred(m) {
				c.t.Fatalf("unexpected %s: %s %s", what, m.Type, m.Data)
			}
			c.backlog = append(c.backlog, m)
		case <-timer.C:
			return
		}
	}
}

// joinMessaging opens a messaging-only session (token without a room).
func (e *chatEnv) joinMessaging(identity string) *cc {
	e.t.Helper()
	return e.joinCC(identity, "", chatOnly)
}

func (e *chatEnv) joinCC(identity, room string, g auth.Grants) *cc {
	e.t.Helper()
	c := e.dialCC()
	c.send("join", "j", proto.JoinBody{Token: e.token(identity, room, g), Protocol: 1})
	m := c.waitType("joined")
	m.decode(e.t, &c.joined)
	return c
}

// direct opens the direct conversation with peer and returns it.
func (c *cc) direct(peer string) proto.ConversationView {
	c.t.Helper()
	id := "d-" + peer
	c.send(proto.TypeChatDirect, id, proto.ChatDirectBody{Identity: peer})
	m := c.waitRe(id)
	if m.Type != proto.TypeConversation {
		c.t.Fatalf("chat_direct answered %s %s", m.Type, m.Data)
	}
	var b proto.ConversationBody
	m.decode(c.t, &b)
	return b.Conversation
}

// sendText sends one message and returns its ack.
func (c *cc) sendText(convID, clientID, text string) proto.ChatAckBody {
	c.t.Helper()
	id := "s-" + clientID
	c.send(proto.TypeChatSend, id, proto.ChatSendBody{ConversationID: convID, ClientMsgID: clientID, Text: text})
	m := c.waitRe(id)
	if m.Type != proto.TypeChatAck {
		c.t.Fatalf("chat_send answered %s %s", m.Type, m.Data)
	}
	var ack proto.ChatAckBody
	m.decode(c.t, &ack)
	return ack
}

// nextMessage waits for a pushed "message".
func (c *cc) nextMessage() proto.MessageView {
	c.t.Helper()
	m := c.waitType(proto.TypeMessage)
	var v proto.MessageView
	m.decode(c.t, &v)
	return v
}

func newClientID() string { return uuid.NewString() }

// storedEvents reads a conversation's whole log straight from the service.
func (e *chatEnv) storedEvents(identity, convID string) []chat.Message {
	e.t.Helper()
	page, err := e.svc.Range(e.t.Context(), identity, convID, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return page.Messages
}

// testUUID is a well-formed client message id.
const testUUID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

// openChatStore opens a chat store with the default configuration in a
// temporary SQLite file, closed at cleanup: the one several nodes of a
// cluster test share, as they would share PostgreSQL.
func openChatStore(t testing.TB) (chat.Config, *sqlitestore.Store) {
	t.Helper()
	cfg := chat.DefaultConfig()
	st, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "chat.db"), sqlitestore.OptionsFromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return cfg, st
}
