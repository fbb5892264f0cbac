package signaling

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/sqlitestore"
	"github.com/parleyhq/parley/cluster"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/proto"
)

// The tests in this file run signaling servers as cluster nodes on the
// real Redis of 127.0.0.1:6379 (./scripts/test-services starts it) for
// presence (package cluster's Presence), joined by a memBus and sharing
// one chat store.

// redisPresence is the ClusterPresence (and ClusterGroups) of a cluster
// node, as cmd/parley makes it.
type redisPresence struct{ p *cluster.Presence }

func (v redisPresence) NodeID() string { return v.p.NodeID() }

func (v redisPresence) SetPresence(ctx context.Context, identity, status string) (PresenceChange, error) {
	c, err := v.p.Set(ctx, identity, status)
	return PresenceChange(c), err
}

func (v redisPresence) Presences(ctx context.Context, identities []string) (map[string]PresenceState, error) {
	m, err := v.p.Statuses(ctx, identities)
	return presenceStates(m), err
}

func (v redisPresence) GroupPresences(ctx context.Context, identity string, groups, also []string) (map[string]PresenceState, error) {
	m, err := v.p.GroupStatuses(ctx, identity, groups, also)
	return presenceStates(m), err
}

func (v redisPresence) AddGroupMembers(ctx context.Context, group string, members []string) error {
	return v.p.AddGroupMembers(ctx, group, members)
}

func presenceStates(m map[string]cluster.PresenceState) map[string]PresenceState {
	out := make(map[string]PresenceState, len(m))
	for id, st := range m {
		out[id] = PresenceState(st)
	}
	return out
}

// startRedisCluster starts one signaling server per node id, each a
// cluster node under a key prefix of this test's, running until the
// test ends.
func startRedisCluster(t *testing.T, nodeIDs ...string) []*chatEnv {
	t.Helper()
	return startRedisClusterVia(t, nil, nodeIDs...)
}

// startRedisClusterVia is startRedisCluster with the nodes named in via
// reaching Redis at the address given there (a proxy the test cuts).
func startRedisClusterVia(t *testing.T, via map[string]string, nodeIDs ...string) []*chatEnv {
	t.Helper()
	prefix := "parley-test:" + ids.New("") + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	bus := newMemBus(t)
	cfg := chat.DefaultConfig()
	st, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "chat.db"), sqlitestore.OptionsFromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var envs []*chatEnv
	for _, id := range nodeIDs {
		ccfg := cluster.DefaultConfig()
		ccfg.RedisURL = "redis://127.0.0.1:6379/0"
		if addr, ok := via[id]; ok {
			ccfg.RedisURL = "redis://" + addr + "/0"
		}
		ccfg.Advertise = "http://127.0.0.1:1"
		ccfg.LeaseTTL = time.Second
		ccfg.RoomTTL = 3 * time.Second
		ccfg.KeyPrefix = prefix
		ccfg.NodeID = id
		node, err := cluster.New(context.Background(), ccfg, "test", func() cluster.Load { return cluster.Load{} }, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%v (is Redis running on 127.0.0.1:6379? ./scripts/test-services starts it)", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		nodeDone := make(chan struct{})
		go func() { defer close(nodeDone); _ = node.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-nodeDone; _ = node.Close() })
		pres := cluster.NewPresence(node, nil, nil, slog.New(slog.DiscardHandler))

		svc, err := chat.New(cfg, chat.Deps{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		n := bus.node()
		env := &chatEnv{testEnv: startServerDeps(t, nil, func(d *Deps) {
			d.Chat, d.Relay, d.Presence = svc, n, redisPresence{pres}
		}), svc: svc}
		n.bus.mu.Lock()
		n.srv = env.srv
		n.bus.mu.Unlock()
		presDone := make(chan struct{})
		go func() { defer close(presDone); _ = env.srv.RunPresence(ctx) }()
		t.Cleanup(func() { cancel(); <-presDone })
		for _, who := range []string{"ada", "bob", "carol", "dave"} {
			env.srv.rememberIdentity(who)
		}
		envs = append(envs, env)
	}
	return envs
}

// group makes a group of c's identity and members and returns it.
func (c *cc) group(members ...string) proto.ConversationView {
	c.t.Helper()
	id := "g-" + newClientID()
	c.send(proto.TypeChatGroup, id, proto.ChatGroupBody{Title: "team", Members: members})
	m := c.waitRe(id)
	if m.Type != proto.TypeConversation {
		c.t.Fatalf("chat_group answered %s %s", m.Type, m.Data)
	}
	var b proto.ConversationBody
	m.decode(c.t, &b)
	return b.Conversation
}

func presenceIs(identity, status string) func(msg) bool {
	return func(m msg) bool {
		var p proto.PresenceBody
		return m.Type == proto.TypePresence && json.Unmarshal(m.Data, &p) == nil && p.Identity == identity && p.Status == status
	}
}

// A new session's presence snapshot shows the members of its groups
// that are connected only to other nodes: Bob, who connected to B after
// the group was made, and Carol, connected to B before it (her node did
// not know of the group; the group's creation listed her).
func TestClusterPresenceSnapshotShowsGroupMembersElsewhere(t *testing.T) {
	nodes := startRedisCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	b.joinMessaging("carol")
	ada := a.joinMessaging("ada")
	g := ada.group("bob", "carol", "dave")
	a.srv.cpres.noteGroup(chat.Conversation{ID: g.ID, Kind: chat.KindGroup}, []string{"ada", "bob", "carol", "dave"})
	b.joinMessaging("bob")
	ada.waitFor("bob online", presenceIs("bob", proto.PresenceOnline))

	ada.close()
	ada = a.joinMessaging("ada")
	ada.waitFor("bob online in the snapshot", presenceIs("bob", proto.PresenceOnline))
	ada.waitFor("carol online in the snapshot", presenceIs("carol", proto.PresenceOnline))
	ada.noneFn("dave, offline, in the snapshot", func(m msg) bool {
		var p proto.PresenceBody
		return m.Type == proto.TypePresence && json.Unmarshal(m.Data, &p) == nil && p.Identity == "dave"
	}, 300*time.Millisecond)
}

// While Redis cannot be reached, a new session's snapshot shows this
// node's own view without waiting: the first join after the cut waits
// at most for one timed-out write of the merged view, the next ones not
// at all (for a second after a failure nothing waits on Redis).
func TestClusterPresenceSnapshotWithoutRedis(t *testing.T) {
	cut := testkit.StartTCPProxy(t, "127.0.0.1:6379")
	nodes := startRedisClusterVia(t, map[string]string{"a": cut.Addr()}, "a", "b")
	a, b := nodes[0], nodes[1]
	ada := a.joinMessaging("ada")
	g := ada.group("bob", "carol")
	a.srv.cpres.noteGroup(chat.Conversation{ID: g.ID, Kind: chat.KindGroup}, []string{"ada", "bob", "carol"})
	a.joinMessaging("carol")
	b.joinMessaging("bob")
	ada.waitFor("bob online", presenceIs("bob", proto.PresenceOnline))

	cut.Down()
	for i, limit := range []time.Duration{presenceTimeout + time.Second, 900 * time.Millisecond} {
		start := time.Now()
		again := a.joinMessaging("ada")
		again.waitFor("carol, connected here, in the snapshot", presenceIs("carol", proto.PresenceOnline))
		if took := time.Since(start); took > limit {
			t.Fatalf("join %d without Redis took %v to show the snapshot, want at most %v", i+1, took, limit)
		} else {
			t.Logf("join %d without Redis: snapshot after %v", i+1, took)
		}
	}
}
