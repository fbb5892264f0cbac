package signaling

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/chat"
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

func (v redisPresence) PresencesChangedSince(ctx context.Context, since time.Time, identities []string) (map[string]PresenceState, error) {
	m, err := v.p.ChangedSince(ctx, since, identities)
	return presenceStates(m), err
}

func (v redisPresence) GroupMembers(ctx context.Context, groups []string) (map[string][]string, error) {
	return v.p.GroupMembers(ctx, groups)
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
	return startRedisClusterAt(t, newRedisPrefix(t), nil, nodeIDs...)
}

// newRedisPrefix is a key prefix of the test's own, whose keys are
// deleted when it ends.
func newRedisPrefix(t testing.TB) string {
	t.Helper()
	prefix := "parley-test:" + ids.New("") + ":"
	t.Cleanup(func() { deleteRedisKeys(prefix) })
	return prefix
}

// deleteRedisKeys deletes the keys under prefix (what Redis losing its
// data does to them).
func deleteRedisKeys(prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// startRedisClusterAt is startRedisCluster under prefix, with the nodes
// named in via reaching Redis at the address given there (a proxy the
// test cuts).
func startRedisClusterAt(t *testing.T, prefix string, via map[string]string, nodeIDs ...string) []*chatEnv {
	t.Helper()
	return startRedisClusterWith(t, redisCluster{prefix: prefix, via: via}, nodeIDs...)
}

// redisCluster says how startRedisClusterWith makes its nodes.
type redisCluster struct {
	prefix string
	via    map[string]string // node id -> the address it reaches Redis at
	// realBus joins the nodes by cluster.Bus on Redis (through via) and
	// runs their refill after bus outages and departures of nodes, as
	// cmd/parley does, instead of a memBus.
	realBus bool
	// mutate changes the servers' config (nil: the tests').
	mutate func(*Config)
}

func startRedisClusterWith(t testing.TB, rc redisCluster, nodeIDs ...string) []*chatEnv {
	t.Helper()
	prefix, via := rc.prefix, rc.via
	bus := newMemBus(t)
	cfg, st := openChatStore(t)
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
		var srv *Server // the presence's callbacks run once it is set (Run below)
		pres := cluster.NewPresence(node, func(cs []cluster.PresenceChange) {
			out := make([]PresenceChange, len(cs))
			for i, c := range cs {
				out[i] = PresenceChange(c)
			}
			srv.PresenceReaped(out)
		}, func() { srv.PresenceLost() }, slog.New(slog.DiscardHandler))

		svc, err := chat.New(cfg, chat.Deps{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		var relay ChatRelay
		var rbus *cluster.Bus
		if rc.realBus {
			rbus = cluster.NewBus(node, func(topic string, payload []byte) { srv.DeliverRemote(topic, payload) }, slog.New(slog.DiscardHandler))
			rbus.OnRecover(func(o cluster.Outage) { srv.ClusterRefill().Outage(o.Since, o.Unsubscribed, o.Lost, o.LostMore) })
			relay = rbus
		} else {
			relay = bus.node()
		}
		env := &chatEnv{testEnv: startServerDeps(t, rc.mutate, func(d *Deps) {
			d.Chat, d.Relay, d.Presence = svc, relay, redisPresence{pres}
		}), svc: svc}
		if n, ok := relay.(*memNode); ok {
			n.bus.mu.Lock()
			n.srv = env.srv
			n.bus.mu.Unlock()
		}
		srv = env.srv
		if rbus != nil { // started once srv is set: it delivers to srv
			busDone, refillDone, leftDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
			left := cluster.NewDepartures(node, func(ni cluster.NodeInfo) {
				env.srv.ClusterRefill().Departed(ni.Renewed.Add(-cluster.LossMargin))
			}, slog.New(slog.DiscardHandler))
			go func() { defer close(busDone); _ = rbus.Run(ctx) }()
			go func() { defer close(refillDone); _ = env.srv.ClusterRefill().Run(ctx) }()
			go func() { defer close(leftDone); _ = left.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-busDone; <-refillDone; <-leftDone })
		}
		presDone, reapDone := make(chan struct{}), make(chan struct{})
		go func() { defer close(presDone); _ = env.srv.RunPresence(ctx) }()
		go func() { defer close(reapDone); _ = pres.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-presDone; <-reapDone })
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
	nodes := startRedisClusterAt(t, newRedisPrefix(t), map[string]string{"a": cut.Addr()}, "a", "b")
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

// When Redis loses its data, the nodes list the members connected to
// them in their groups again (with their presence), so a new session
// still shows a group member connected to another node.
func TestClusterPresenceGroupsListedAgainAfterRedisLoss(t *testing.T) {
	prefix := newRedisPrefix(t)
	nodes := startRedisClusterAt(t, prefix, nil, "a", "b")
	a, b := nodes[0], nodes[1]
	ada := a.joinMessaging("ada")
	ada.group("bob")
	b.joinMessaging("bob")
	ada.waitFor("bob online", presenceIs("bob", proto.PresenceOnline))

	deleteRedisKeys(prefix)
	// B writes bob's presence again, which is announced anew: only new
	// sessions' snapshots are left to show.
	if !seesWithin(ada, 3*time.Second, presenceIs("bob", proto.PresenceOnline)) {
		t.Fatal("bob's presence was not announced again after Redis lost it")
	}
	deadline := time.Now().Add(5 * time.Second)
	for attempt := 1; ; attempt++ {
		again := a.joinMessaging("ada")
		seen := seesWithin(again, time.Second, presenceIs("bob", proto.PresenceOnline))
		again.close()
		if seen {
			t.Logf("bob in a new session's snapshot at attempt %d", attempt)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("5 s after Redis lost its data, ada's new sessions still do not show bob")
		}
	}
}

// seesWithin reports whether a message matching pred arrives at c
// within d.
func seesWithin(c *cc, d time.Duration, pred func(msg) bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				return false
			}
			if pred(m) {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}
