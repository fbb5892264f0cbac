package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// runRefill runs env's cluster refill until the test ends (before the
// server stops: cleanups run last-registered first).
func runRefill(t *testing.T, env *chatEnv) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = env.srv.ClusterRefill().Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// refillCount reads one of the refill counters.
func refillCount(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// busOf is the in-memory bus joining env to the other node.
func busOf(env *chatEnv) *memBus { return env.srv.hub.relay.(*memNode).bus }

// pushedMessages waits for n pushed "message"s and returns them in order
// of arrival.
func pushedMessages(c *cc, n int) []proto.MessageView {
	c.t.Helper()
	out := make([]proto.MessageView, 0, n)
	for range n {
		out = append(out, c.nextMessage())
	}
	return out
}

// When the bus comes back after an outage, the node pushes its sessions
// what the outage cost them, without anyone writing again: the messages
// stored since it began, in seq order, and a group made meanwhile; not
// what was pushed before it, and nothing to a session whose token does
// not grant chat (it gets no chat live either).
func TestRefillAfterOutage(t *testing.T) {
	a, b := startClusterChat(t)
	runRefill(t, a)
	runRefill(t, b)
	alice, carol := a.joinMessaging("alice"), a.joinMessaging("carol")
	bob := b.joinMessaging("bob")
	b.srv.rememberIdentity("dave")
	dave := b.joinCC("dave", "standup", auth.Grants{Publish: true, Subscribe: true})
	conv := alice.direct("bob")
	bob.waitType(proto.TypeConversation)
	alice.sendText(conv.ID, newClientID(), "before")
	if m := bob.nextMessage(); m.Seq != 1 {
		t.Fatalf("bob got seq %d, want 1", m.Seq)
	}

	busOf(a).down.Store(true)
	since := time.Now()
	alice.sendText(conv.ID, newClientID(), "lost 1")
	alice.sendText(conv.ID, newClientID(), "lost 2")
	carol.send(proto.TypeChatGroup, "g", proto.ChatGroupBody{Title: "made in the outage", Members: []string{"bob", "dave"}})
	var grp proto.ConversationBody
	carol.waitRe("g").decode(t, &grp)
	carol.sendText(grp.Conversation.ID, newClientID(), "hello group")
	bob.none(proto.TypeMessage, 200*time.Millisecond) // the outage's premise: all of it lost
	busOf(a).down.Store(false)

	b.srv.ClusterRefill().Outage(since, true, nil, false)
	bob.waitFor("the group made in the outage", func(m msg) bool {
		var c proto.ConversationBody
		m.decode(t, &c)
		return m.Type == proto.TypeConversation && c.Conversation.ID == grp.Conversation.ID
	})
	var direct []int64
	group := 0
	for _, m := range pushedMessages(bob, 3) {
		switch m.ConversationID {
		case conv.ID:
			direct = append(direct, m.Seq)
		case grp.Conversation.ID:
			if m.Seq != 1 || m.Text != "hello group" {
				t.Errorf("group event seq %d %q", m.Seq, m.Text)
			}
			group++
		}
	}
	if len(direct) != 2 || direct[0] != 2 || direct[1] != 3 || group != 1 {
		t.Fatalf("refill pushed direct seqs %v and %d group events; want [2 3] and 1", direct, group)
	}
	bob.none(proto.TypeMessage, 300*time.Millisecond) // seq 1 was pushed before the outage
	dave.noneFn("chat", func(m msg) bool { return m.Type == proto.TypeMessage || m.Type == proto.TypeConversation }, 200*time.Millisecond)
	if n := refillCount(t, b.srv.refill.rounds.WithLabelValues(refillOutage)); n != 1 {
		t.Errorf("parley_signaling_cluster_refills_total{cause=outage} is %v, want 1", n)
	}
}

// Publications a node failed to send are lost for the other nodes even
// when their bus saw no outage: the node's refill hints make them push
// the events to their sessions, for each lost topic or, when more were
// lost than the bus listed, for every conversation it indexes.
func TestRefillHintsOtherNodes(t *testing.T) {
	a, b := startClusterChat(t)
	runRefill(t, a)
	runRefill(t, b)
	alice := a.joinMessaging("alice")
	bob := b.joinMessaging("bob")
	conv := alice.direct("bob")
	bob.waitType(proto.TypeConversation)

	for i, lost := range [][]string{{topicConv(conv.ID)}, nil} {
		busOf(a).down.Store(true)
		since := time.Now()
		alice.sendText(conv.ID, newClientID(), "lost")
		// The push is published after the ack is queued: the bus stays
		// down until it surely was.
		bob.none(proto.TypeMessage, 100*time.Millisecond)
		busOf(a).down.Store(false)
		a.srv.ClusterRefill().Outage(since, false, lost, lost == nil)
		if m := bob.nextMessage(); m.Seq != int64(i+1) || m.ConversationID != conv.ID {
			t.Fatalf("round %d: bob got seq %d of %s, want %d of %s", i, m.Seq, m.ConversationID, i+1, conv.ID)
		}
	}
	bob.none(proto.TypeMessage, 200*time.Millisecond)
	if n := refillCount(t, b.srv.refill.rounds.WithLabelValues(refillPeer)); n != 2 {
		t.Errorf("b's parley_signaling_cluster_refills_total{cause=peer} is %v, want 2", n)
	}
}
