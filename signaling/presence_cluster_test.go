package signaling

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// memPresence is a ClusterPresence of one node, standing in for the
// merged view in Redis (package cluster and e2e/cluster test that one).
type memPresence struct {
	mu    sync.Mutex
	st    map[string]string
	v     int64
	reads int // Presences calls
}

func (m *memPresence) NodeID() string { return "test-node" }

func (m *memPresence) SetPresence(_ context.Context, identity, status string) (PresenceChange, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	before := m.st[identity]
	if before == "" {
		before = proto.PresenceOffline
	}
	m.st[identity] = status
	ch := PresenceChange{Identity: identity, Before: before, After: status}
	if before != status {
		m.v++
		ch.Version = m.v
	}
	return ch, nil
}

func (m *memPresence) Presences(_ context.Context, ids []string) (map[string]PresenceState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	out := map[string]PresenceState{}
	for _, id := range ids {
		if st := m.st[id]; st != "" && st != proto.PresenceOffline {
			out[id] = PresenceState{Status: st, Version: m.v}
		}
	}
	return out, nil
}

// A presence change relayed by another node reaches the contacts here,
// and one that arrives after a newer change of the same identity (two
// nodes' publications are not ordered) is dropped, so contacts are not
// left showing a stale status.
func TestClusterPresenceDropsOlderChange(t *testing.T) {
	cfg, st := openChatStore(t)
	svc, err := chat.New(cfg, chat.Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	bus := newMemBus(t)
	n := bus.node()
	env := &chatEnv{testEnv: startServerDeps(t, nil, func(d *Deps) {
		d.Chat, d.Relay, d.Presence = svc, n, &memPresence{st: map[string]string{}}
	}), svc: svc}
	for _, id := range []string{"alice", "bob"} {
		env.srv.rememberIdentity(id)
	}
	alice := env.joinMessaging("alice")
	conv := alice.direct("bob") // bob is connected to no node

	relay := func(version int64, status string) {
		b, err := json.Marshal(relayEvent{Kind: relayPresenceChange, Identity: "bob", Seq: version, Convs: []string{conv.ID},
			Msg: proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: "bob", Status: status})})
		if err != nil {
			t.Fatal(err)
		}
		env.srv.DeliverRemote(topicPresence, b)
	}
	bobIs := func(status string) func(msg) bool {
		return func(m msg) bool {
			var p proto.PresenceBody
			return m.Type == proto.TypePresence && json.Unmarshal(m.Data, &p) == nil && p.Identity == "bob" && p.Status == status
		}
	}
	relay(10, proto.PresenceOnline)
	alice.waitFor("bob online", bobIs(proto.PresenceOnline))
	relay(12, proto.PresenceOffline)
	alice.waitFor("bob offline", bobIs(proto.PresenceOffline))
	relay(11, proto.PresenceOnline) // older than the offline above
	alice.noneFn("bob's stale online", bobIs(proto.PresenceOnline), 300*time.Millisecond)
	relay(13, proto.PresenceInCall)
	alice.waitFor("bob in a call", bobIs(proto.PresenceInCall))
}

// recRelay is a ChatRelay that keeps what a node publishes.
type recRelay struct {
	mu   sync.Mutex
	pubs []relayEvent
}

func (r *recRelay) Publish(_ string, payload []byte) {
	var ev relayEvent
	if json.Unmarshal(payload, &ev) == nil {
		r.mu.Lock()
		r.pubs = append(r.pubs, ev)
		r.mu.Unlock()
	}
}

func (r *recRelay) Watch(string, bool) {}

// presenceTo returns the presence changes of identity published for
// conversation convID.
func (r *recRelay) presenceTo(identity, convID string) []relayEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []relayEvent
	for _, ev := range r.pubs {
		if ev.Kind == relayPresenceChange && ev.Identity == identity && slices.Contains(ev.Convs, convID) {
			out = append(out, ev)
		}
	}
	return out
}

// A direct conversation made on another node reaches bob's node after
// bob's node announced him online, listing only the conversations it
// knew then; the other node may have read bob as offline before that
// write. So bob's node sends his newest change again to the new
// conversation, and counts the peer among his direct peers for refills.
func TestClusterPresenceJoinedConversationGetsStatus(t *testing.T) {
	cfg, st := openChatStore(t)
	svc, err := chat.New(cfg, chat.Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recRelay{}
	env := &chatEnv{testEnv: startServerDeps(t, nil, func(d *Deps) {
		d.Chat, d.Relay, d.Presence = svc, rec, &memPresence{st: map[string]string{}}
	}), svc: svc}
	for _, id := range []string{"alice", "bob"} {
		env.srv.rememberIdentity(id)
	}
	env.joinMessaging("bob")

	// alice, on another node, opens a direct conversation with bob.
	conv, err := svc.Direct(context.Background(), chat.Identity{ID: "alice"}, chat.Identity{ID: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(relayEvent{Kind: relayNewConv, Identity: "bob", Conversation: &conv})
	if err != nil {
		t.Fatal(err)
	}
	env.srv.DeliverRemote(topicIdentity("bob"), b)

	deadline := time.Now().Add(5 * time.Second)
	var got []relayEvent
	for got = rec.presenceTo("bob", conv.ID); len(got) == 0 && time.Now().Before(deadline); got = rec.presenceTo("bob", conv.ID) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("bob's node published %d presence changes of bob for the new conversation, want 1", len(got))
	}
	var env2 struct{ Data proto.PresenceBody }
	if json.Unmarshal(got[0].Msg, &env2) != nil || env2.Data.Status != proto.PresenceOnline || got[0].Seq == 0 {
		t.Fatalf("published %s (version %d), want bob online with his version", got[0].Msg, got[0].Seq)
	}
	watchers, _ := env.srv.cpres.watchers()
	if _, ok := watchers["alice"]["bob"]; !ok {
		t.Errorf("bob's new direct peer alice is not watched for refills: %v", watchers["alice"])
	}
}
