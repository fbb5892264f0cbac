package signaling

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/proto"
)

// A message relayed while node a's connection to Redis was silent (a
// partition that resets nothing until it ends) reaches Ada's session on
// a once the connection is back: a's bus saw the silence within seconds,
// dated it from when its subscription last worked, and the refill read
// the message from storage. Without that, the reset at the end of the
// partition would date the outage after the message.
func TestClusterChatRefillAfterSilentRedis(t *testing.T) {
	px := testkit.StartFreezeProxy(t, "127.0.0.1:6379")
	nodes := startRedisClusterWith(t, redisCluster{prefix: newRedisPrefix(t), via: map[string]string{"a": px.Addr()}, realBus: true}, "a", "b")
	a, b := nodes[0], nodes[1]
	bob := b.joinMessaging("bob")
	conv, ada := relayed(t, bob, func() *cc { return a.joinMessaging("ada") }, "ada")
	seesWithin(ada, 300*time.Millisecond, func(msg) bool { return false }) // the last probes

	px.Freeze()
	bob.sendText(conv.ID, newClientID(), "during")
	ada.none(proto.TypeMessage, 5*time.Second) // long enough for the stall to be seen
	px.Reset()
	start := time.Now()
	if !seesWithin(ada, 5*time.Second, func(m msg) bool {
		if m.Type != proto.TypeMessage {
			return false
		}
		var v proto.MessageView
		m.decode(t, &v)
		return v.Text == "during"
	}) {
		t.Fatal("5 s after the partition ended, ada has not got the message sent during it")
	}
	t.Logf("refilled %v after the partition ended", time.Since(start).Round(time.Millisecond))
}
