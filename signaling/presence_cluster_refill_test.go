package signaling

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/proto"
)

// Presence changes lost on the bus while node a's Redis was cut reach
// a's sessions once it is back, without anyone changing again: Bob (a
// direct peer of Ada's) and Carol (in her group), both on node b, go
// offline during one cut and Bob comes back online during another; Ada,
// on a, sees each current status within a bound after the cut ends.
func TestClusterPresenceRefillAfterBusOutage(t *testing.T) {
	cut := testkit.StartTCPProxy(t, "127.0.0.1:6379")
	nodes := startRedisClusterWith(t, redisCluster{prefix: newRedisPrefix(t), via: map[string]string{"a": cut.Addr()}, realBus: true}, "a", "b")
	a, b := nodes[0], nodes[1]
	ada := a.joinMessaging("ada")
	ada.direct("bob")
	g := ada.group("carol")
	a.srv.cpres.noteGroup(chat.Conversation{ID: g.ID, Kind: chat.KindGroup}, []string{"ada", "carol"})
	ada.close()
	ada = a.joinMessaging("ada") // a session that knows Bob as a peer from its start
	bob, carol := b.joinMessaging("bob"), b.joinMessaging("carol")
	ada.waitFor("bob online", presenceIs("bob", proto.PresenceOnline))
	ada.waitFor("carol online", presenceIs("carol", proto.PresenceOnline))

	// mergedIs waits until b has written what its sessions did.
	mergedIs := func(who, status string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			states, err := b.srv.cpres.view.Presences(context.Background(), []string{who})
			st, ok := states[who]
			if err == nil && (ok && st.Status == status || !ok && status == proto.PresenceOffline) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not %s in the merged view (%v, %v)", who, status, states, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	bobOrCarol := func(m msg) bool {
		return presenceIs("bob", proto.PresenceOnline)(m) || presenceIs("bob", proto.PresenceOffline)(m) ||
			presenceIs("carol", proto.PresenceOnline)(m) || presenceIs("carol", proto.PresenceOffline)(m)
	}
	restored := func(what string, preds ...func(msg) bool) {
		t.Helper()
		cut.Up(t)
		start := time.Now()
		left := slices.Clone(preds) // in any order
		if !seesWithin(ada, 5*time.Second, func(m msg) bool {
			left = slices.DeleteFunc(left, func(pred func(msg) bool) bool { return pred(m) })
			return len(left) == 0
		}) {
			t.Fatalf("5 s after node a's Redis came back, ada has not seen %s", what)
		}
		t.Logf("%s seen %v after the cut ended", what, time.Since(start).Round(time.Millisecond))
	}

	// What is left of the snapshot and the live pushes goes.
	seesWithin(ada, 300*time.Millisecond, func(msg) bool { return false })
	ada.backlog = nil
	cut.Down()
	bob.close()
	carol.close()
	mergedIs("bob", proto.PresenceOffline)
	mergedIs("carol", proto.PresenceOffline)
	ada.noneFn("their presence while node a's bus is cut", bobOrCarol, 200*time.Millisecond)
	restored("bob and carol offline", presenceIs("bob", proto.PresenceOffline), presenceIs("carol", proto.PresenceOffline))

	cut.Down()
	bob = b.joinMessaging("bob")
	mergedIs("bob", proto.PresenceOnline)
	ada.noneFn("their presence while node a's bus is cut", bobOrCarol, 200*time.Millisecond)
	restored("bob online", presenceIs("bob", proto.PresenceOnline))
	bob.close()
}

// A node that failed to publish presence changes (its publish side lost
// the presence topic) hints the other nodes, which refill what their
// sessions watch: Bob and Carol leave node a while its publications are
// dropped, and Ada, on node b, sees Bob offline after a's hint. A change
// delivered to b since then that is newer than Carol's stored one (here
// relayed by hand) is not overwritten by the refill.
func TestClusterPresenceRefillOnPeerHint(t *testing.T) {
	nodes := startRedisCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	runRefill(t, a)
	runRefill(t, b)
	bob, carol := a.joinMessaging("bob"), a.joinMessaging("carol")
	ada := b.joinMessaging("ada")
	ada.direct("bob")
	withCarol := ada.direct("carol")
	ada.close()
	ada = b.joinMessaging("ada")
	ada.waitFor("bob online", presenceIs("bob", proto.PresenceOnline))
	ada.waitFor("carol online", presenceIs("carol", proto.PresenceOnline))
	seesWithin(ada, 300*time.Millisecond, func(msg) bool { return false })
	ada.backlog = nil

	busOf(a).down.Store(true)
	since := time.Now()
	bob.close()
	carol.close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		states, err := a.srv.cpres.view.Presences(context.Background(), []string{"bob", "carol"})
		if err == nil && len(states) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node a did not write bob and carol offline")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the announcements follow the writes
	busOf(a).down.Store(false)
	newer := relayEvent{Kind: relayPresenceChange, Identity: "carol", Seq: time.Now().Add(time.Hour).UnixMicro(), Convs: []string{withCarol.ID},
		Msg: proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: "carol", Status: proto.PresenceInCall})}
	payload, err := json.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}
	b.srv.DeliverRemote(topicPresence, payload)
	ada.waitFor("carol's newer change", presenceIs("carol", proto.PresenceInCall))
	ada.noneFn("bob offline before the hint", presenceIs("bob", proto.PresenceOffline), 200*time.Millisecond)

	a.srv.ClusterRefill().Outage(since, false, []string{topicPresence}, false)
	carolOffline := presenceIs("carol", proto.PresenceOffline)
	stale := false
	if !seesWithin(ada, 3*time.Second, func(m msg) bool {
		stale = stale || carolOffline(m)
		return presenceIs("bob", proto.PresenceOffline)(m)
	}) {
		t.Fatal("ada did not see bob offline after node a's hint")
	}
	if stale {
		t.Fatal("the refill showed carol's older offline over her newer change")
	}
	ada.noneFn("carol's older offline over her newer change", carolOffline, 300*time.Millisecond)
}
