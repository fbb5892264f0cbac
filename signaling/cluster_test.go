package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// memBus is an in-memory ChatRelay shared by several servers, standing
// in for the Redis bus (package cluster tests that one): like it, it
// delivers asynchronously, never back to the publisher, and only to
// servers watching the topic. Its goroutine is joined at cleanup.
type memBus struct {
	mu    sync.Mutex
	nodes []*memNode
	q     chan memEvent
	done  chan struct{}
	// down drops every publication, as Redis pub/sub does while it is
	// away (cluster_refill_test.go).
	down atomic.Bool
}

type memNode struct {
	bus   *memBus
	srv   *Server
	watch map[string]bool // bus.mu
}

type memEvent struct {
	from           *memNode
	topic, payload string
}

func newMemBus(t testing.TB) *memBus {
	b := &memBus{q: make(chan memEvent, 4096), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for ev := range b.q {
			b.mu.Lock()
			var to []*Server
			for _, n := range b.nodes {
				if n != ev.from && n.watch[ev.topic] {
					to = append(to, n.srv)
				}
			}
			b.mu.Unlock()
			for _, s := range to {
				s.DeliverRemote(ev.topic, []byte(ev.payload))
			}
		}
	}()
	// Registered first, so it runs after the servers stopped.
	t.Cleanup(func() { close(b.q); <-b.done })
	return b
}

func (b *memBus) node() *memNode {
	n := &memNode{bus: b, watch: map[string]bool{}}
	b.mu.Lock()
	b.nodes = append(b.nodes, n)
	b.mu.Unlock()
	return n
}

func (n *memNode) Publish(topic string, payload []byte) {
	if n.bus.down.Load() {
		return
	}
	n.bus.q <- memEvent{from: n, topic: topic, payload: string(payload)}
}

func (n *memNode) Watch(topic string, on bool) {
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	if on {
		n.watch[topic] = true
	} else {
		delete(n.watch, topic)
	}
}

// startClusterChat starts two chat servers on one store joined by a
// memBus: the shape of two cluster nodes on one PostgreSQL.
func startClusterChat(t *testing.T) (a, b *chatEnv) {
	t.Helper()
	return startClusterChatWith(t, nil)
}

// startClusterChatWith is startClusterChat with node b's chat service
// reading the store through wrapB (nil: directly).
func startClusterChatWith(t *testing.T, wrapB func(chat.Store) chat.Store) (a, b *chatEnv) {
	t.Helper()
	bus := newMemBus(t)
	cfg, st := openChatStore(t)
	start := func(st chat.Store) *chatEnv {
		svc, err := chat.New(cfg, chat.Deps{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		n := bus.node()
		env := &chatEnv{testEnv: startServerDeps(t, nil, func(d *Deps) { d.Chat, d.Relay = svc, n }), svc: svc}
		n.bus.mu.Lock()
		n.srv = env.srv
		n.bus.mu.Unlock()
		for _, id := range []string{"alice", "bob", "carol"} {
			env.srv.rememberIdentity(id)
		}
		return env
	}
	stB := chat.Store(st)
	if wrapB != nil {
		stB = wrapB(st)
	}
	return start(st), start(stB)
}

// Pushes reach sessions on the other node: a new direct conversation and
// its messages, receipts, typing, a group, and presence.
func TestChatAcrossNodes(t *testing.T) {
	a, b := startClusterChat(t)
	alice := a.joinMessaging("alice")
	bob := b.joinMessaging("bob")
	carol := b.joinMessaging("carol")

	conv := alice.direct("bob")
	var pushed proto.ConversationBody
	bob.waitType(proto.TypeConversation).decode(t, &pushed)
	if pushed.Conversation.ID != conv.ID {
		t.Fatalf("bob was told of %q, alice opened %q", pushed.Conversation.ID, conv.ID)
	}
	for i := range 5 { // under chat_rate_burst
		alice.sendText(conv.ID, newClientID(), "m")
		if m := bob.nextMessage(); m.Seq != int64(i+1) || m.Sender.Identity != "alice" {
			t.Fatalf("bob got seq %d from %q, want %d from alice", m.Seq, m.Sender, i+1)
		}
	}
	carol.none(proto.TypeMessage, 0) // not a member

	bob.send(proto.TypeChatReceipt, "r", proto.ChatReceiptBody{ConversationID: conv.ID, Read: 5})
	bob.waitRe("r")
	var wm proto.WatermarksBody
	alice.waitType(proto.TypeChatReceipt).decode(t, &wm)
	if wm.Identity != "bob" || wm.Read != 5 {
		t.Fatalf("alice got receipt %+v", wm)
	}
	bob.send(proto.TypeTyping, "", proto.TypingBody{ConversationID: conv.ID})
	var ty proto.TypingEventBody
	alice.waitType(proto.TypeTyping).decode(t, &ty)
	if ty.Identity != "bob" {
		t.Fatalf("typing %+v", ty)
	}

	// A group made on b reaches its member on a; a message in it from a
	// reaches both members on b.
	carol.send(proto.TypeChatGroup, "g", proto.ChatGroupBody{Title: "team", Members: []string{"alice", "bob"}})
	var grp proto.ConversationBody
	carol.waitRe("g").decode(t, &grp)
	alice.waitFor("the group", func(m msg) bool {
		var c proto.ConversationBody
		m.decode(t, &c)
		return m.Type == proto.TypeConversation && c.Conversation.ID == grp.Conversation.ID
	})
	alice.sendText(grp.Conversation.ID, newClientID(), "hi team")
	for _, c := range []*cc{bob, carol} {
		if m := c.waitFor("the group message", func(m msg) bool { return m.Type == proto.TypeMessage && m.hasConv(grp.Conversation.ID) }); m.Type != proto.TypeMessage {
			t.Fatal(m)
		}
	}

	// bob goes away: alice, on the other node, sees him offline.
	bob.close()
	alice.waitFor("bob offline", func(m msg) bool {
		var p proto.PresenceBody
		if m.Type != proto.TypePresence {
			return false
		}
		m.decode(t, &p)
		return p.Identity == "bob" && p.Status == proto.PresenceOffline
	})
}

// hasConv reports whether a pushed message belongs to convID.
func (m msg) hasConv(convID string) bool {
	var v proto.MessageView
	if err := json.Unmarshal(m.Data, &v); err != nil {
		return false
	}
	return v.ConversationID == convID
}

// placerFunc is a RoomPlacer.
type placerFunc func(ctx context.Context, room string) (string, error)

func (f placerFunc) PlaceRoom(ctx context.Context, room string) (string, error) { return f(ctx, room) }

// A join of a room hosted elsewhere is refused with wrong_node and the
// node's URL; a placement failure is a retryable unavailable; a room
// placed here joins.
func TestJoinPlacement(t *testing.T) {
	env := startServerDeps(t, nil, func(d *Deps) {
		d.Placer = placerFunc(func(_ context.Context, room string) (string, error) {
			switch room {
			case "elsewhere":
				return "https://node-b.example", nil
			case "broken":
				return "", errors.New("redis: connection refused")
			}
			return "", nil
		})
	})
	join := func(room string) msg {
		t.Helper()
		c := env.mustDial()
		c.send("join", "1", proto.JoinBody{Token: env.token("ada", room, allGrants), Protocol: 1})
		m, err := c.next(false)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var eb proto.ErrorBody
	m := join("elsewhere")
	m.decode(t, &eb)
	if m.Type != proto.TypeError || eb.Code != proto.CodeWrongNode || eb.URL != "https://node-b.example" {
		t.Fatalf("join of a room on another node: %s %s", m.Type, m.Data)
	}
	m = join("broken")
	eb = proto.ErrorBody{}
	m.decode(t, &eb)
	if eb.Code != proto.CodeUnavailable || eb.URL != "" {
		t.Fatalf("join with placement down: %s", m.Data)
	}
	if m := join("here"); m.Type != proto.TypeJoined {
		t.Fatalf("join of a room placed here: %s %s", m.Type, m.Data)
	}
}
