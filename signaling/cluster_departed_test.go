package signaling

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/proto"
)

// A node that stored a message but never got its publication out (cut
// from Redis for good, as a node killed with its queue full would be)
// costs Bob's session on node b that push, and b's own bus saw no
// outage. Node a's lease lapsing is what b sees: it refills its sessions
// from a's last renewal, and Bob gets the message within a bound.
func TestClusterChatRefillAfterNodeLeft(t *testing.T) {
	cut := testkit.StartTCPProxy(t, "127.0.0.1:6379")
	nodes := startRedisClusterWith(t, redisCluster{prefix: newRedisPrefix(t), via: map[string]string{"a": cut.Addr()}, realBus: true}, "a", "b")
	a, b := nodes[0], nodes[1]
	alice := a.joinMessaging("alice")
	conv, bob := relayed(t, alice, func() *cc { return b.joinMessaging("bob") }, "bob")
	seesWithin(bob, 300*time.Millisecond, func(msg) bool { return false }) // the last probes

	cut.Down() // node a is gone for the cluster from now on; its lease is 1 s
	alice.sendText(conv.ID, newClientID(), "stored, never published")
	start := time.Now()
	if !seesWithin(bob, 6*time.Second, func(m msg) bool {
		if m.Type != proto.TypeMessage {
			return false
		}
		var v proto.MessageView
		m.decode(t, &v)
		return v.Text == "stored, never published"
	}) {
		t.Fatal("6 s after node a lost Redis, bob has not got the message it stored")
	}
	t.Logf("refilled %v after node a lost Redis", time.Since(start).Round(time.Millisecond))
	if n := refillCount(t, b.srv.refill.rounds.WithLabelValues(refillNode)); n < 1 {
		t.Errorf("parley_signaling_cluster_refills_total{cause=node} is %v, want at least 1", n)
	}
}

// relayed opens the direct conversation of from (on one node) with to
// (on another) and returns it once a message from sends reaches to
// through the bus: a node's subscriptions take effect shortly after a
// session joins, so it probes with a message every 200 ms, up to 3 s.
func relayed(t *testing.T, from *cc, to func() *cc, peer string) (proto.ConversationView, *cc) {
	t.Helper()
	conv := from.direct(peer) // before the peer connects: its session lists it at join
	c := to()
	for range 15 {
		from.sendText(conv.ID, newClientID(), "probe")
		if seesWithin(c, 200*time.Millisecond, func(m msg) bool { return m.Type == proto.TypeMessage }) {
			return conv, c
		}
	}
	t.Fatal("no message relayed to the peer's node within 3 s")
	return conv, nil
}
