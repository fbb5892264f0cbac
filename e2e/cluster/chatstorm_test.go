package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/internal/chatload"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// The chat storm across three nodes: 30 clients, ten on each
// node, send 3,000 messages into a group of all of them and into 15
// direct conversations. Every acknowledged message must be stored once
// under the seq its ack named, seqs contiguous from 1, and every member
// device must hold exactly the server's history of each of its
// conversations, in seq order, whichever node it is on: pushes cross
// nodes on the Redis bus, gaps are refilled. In the second run a node is
// SIGKILLed in the middle of the storm and its clients reconnect to the
// other two (their next front door, as behind round-robin DNS).
//
// Room conversations are not in the storm: a room's chat lives where the
// room is placed, and a client of the room is redirected there
// (TestClusterTwoNodes), so a room storm is a single-node storm.
func TestClusterChatStorm(t *testing.T) {
	t.Run("steady", func(t *testing.T) { clusterChatStorm(t, newClusterEnv(t), false, nil) })
	t.Run("node killed", func(t *testing.T) {
		clusterChatStorm(t, newClusterEnv(t), true, func(nodes []*testkit.Parley) {
			nodes[2].Kill(t)
			t.Log("node c SIGKILLed")
		})
	})
}

const (
	stormClients   = 30
	stormPerClient = 100 // half into the group, half into the direct conversation
)

// clusterChatStorm runs the storm on env; disrupt, if not nil, is called
// once a third of the messages are acknowledged. afterOutage: the
// disruption loses relayed pushes, so everyone writes once more after it.
func clusterChatStorm(t *testing.T, env clusterEnv, afterOutage bool, disrupt func(nodes []*testkit.Parley)) {
	// The storm must not be throttled by the per-connection limits that
	// protect a real node.
	limits := map[string]any{"rate_per_second": 10000, "rate_burst": 10000, "chat_rate_per_second": 10000, "chat_rate_burst": 10000}
	nodes := []*testkit.Parley{env.startNode(t, "a", limits), env.startNode(t, "b", limits), env.startNode(t, "c", limits)}
	door := func(p *testkit.Parley) chatload.Endpoint {
		return chatload.Endpoint{URL: "ws://" + p.Host + "/ws", Origin: p.URL}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ids := make([]string, stormClients)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%02d", i)
	}
	token := func(id string) func() (string, error) {
		return func() (string, error) { return clusterToken(t, id, "", auth.Grants{Chat: true}), nil }
	}
	dial := func(i int) *chatload.Conn {
		tok, _ := token(ids[i])()
		d := door(nodes[i%3])
		c, err := chatload.Dial(ctx, chatload.DialOptions{URL: d.URL, Origin: d.Origin, Token: tok})
		if err != nil {
			t.Fatalf("%s on node %d: %v", ids[i], i%3, err)
		}
		return c
	}

	// Chat adds only identities that have used Parley, so each opens it
	// once; then user00 makes the group and each even user the direct
	// conversation with the next.
	for i := range ids {
		dial(i).Close()
	}
	creator := dial(0)
	group, err := creator.CreateGroup(ctx, "storm", ids[1:])
	creator.Close()
	if err != nil {
		t.Fatalf("chat_group: %v", err)
	}
	direct := make([]string, stormClients) // each user's direct conversation
	for i := 0; i < stormClients; i += 2 {
		c := dial(i)
		conv, err := c.Direct(ctx, ids[i+1])
		c.Close()
		if err != nil {
			t.Fatalf("chat_direct %s-%s: %v", ids[i], ids[i+1], err)
		}
		direct[i], direct[i+1] = conv.ID, conv.ID
	}

	type sent struct{ sender, text string }
	want := map[string]map[string]sent{group.ID: {}} // conversation -> clientMsgId -> what was sent
	sessions := make([]*chatload.Session, stormClients)
	for i, id := range ids {
		home := door(nodes[i%3])
		sessions[i] = chatload.NewSession(chatload.SessionOptions{
			URL: home.URL, Origin: home.Origin, Token: token(id),
			Fallbacks:  []chatload.Endpoint{door(nodes[(i+1)%3]), door(nodes[(i+2)%3])},
			AckTimeout: 3 * time.Second, Window: 4,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		})
		sessions[i].Track(group.ID)
		sessions[i].Track(direct[i])
		if want[direct[i]] == nil {
			want[direct[i]] = map[string]sent{}
		}
		for n := range stormPerClient {
			conv := group.ID
			if n%2 == 1 {
				conv = direct[i]
			}
			cmid, text := uuid.NewString(), fmt.Sprintf("%s #%03d", id, n)
			want[conv][cmid] = sent{id, text}
			sessions[i].SendWithID(conv, cmid, text)
		}
	}

	var wg sync.WaitGroup
	runCtx, stopClients := context.WithCancel(ctx)
	defer func() { stopClients(); wg.Wait() }()
	start := time.Now()
	for _, s := range sessions {
		wg.Go(func() { _ = s.Run(runCtx) })
	}
	acks := func() int {
		n := 0
		for _, s := range sessions {
			n += s.Stats().Acks
		}
		return n
	}
	if disrupt != nil {
		if !testkit.Poll(ctx, 60*time.Second, time.Millisecond, func() bool { return acks() >= stormClients*stormPerClient/3 }) {
			t.Fatalf("only %d acks before the deadline", acks())
		}
		t.Logf("disrupting %v into the storm, after %d acks", time.Since(start).Round(time.Millisecond), acks())
		disrupt(nodes)
		t.Logf("disruption over %v into the storm, %d acks", time.Since(start).Round(time.Millisecond), acks())
	}
	if !testkit.Poll(ctx, 75*time.Second, 10*time.Millisecond, func() bool {
		pending := 0
		for _, s := range sessions {
			pending += s.Pending()
		}
		return pending == 0
	}) {
		t.Fatalf("messages still unacked at the deadline (%d acks)", acks())
	}
	stormTime := time.Since(start)
	if afterOutage {
		// Pushes relayed while Redis was away are lost (pub/sub keeps
		// nothing), and a client sees that gap only when a later event
		// of the conversation arrives or it reconnects (docs/cluster.md,
		// failure cases). So everyone writes once more into each of its
		// conversations after the outage, as people in a conversation
		// do, and the checks below include those messages.
		for i, id := range ids {
			for _, conv := range []string{group.ID, direct[i]} {
				cmid, text := uuid.NewString(), id+" after the outage"
				want[conv][cmid] = sent{id, text}
				sessions[i].SendWithID(conv, cmid, text)
			}
		}
		if !testkit.Poll(ctx, 30*time.Second, 10*time.Millisecond, func() bool {
			pending := 0
			for _, s := range sessions {
				pending += s.Pending()
			}
			return pending == 0
		}) {
			t.Fatalf("messages after the outage still unacked (%d acks)", acks())
		}
	}

	reader := dial(0) // user00 is on node a, which lives on; it is in the group and in direct[0]
	defer reader.Close()
	var dups, retries, connects int
	for _, s := range sessions {
		if f := s.Failed(); len(f) > 0 {
			t.Errorf("messages refused for good: %v", f)
		}
		st := s.Stats()
		dups, retries, connects = dups+st.Duplicates, retries+st.Retries, connects+st.Connects
	}
	total := 0
	for conv, sentHere := range want {
		// A member of the conversation reads its history.
		member := 0
		for i := range ids {
			if direct[i] == conv {
				member = i
				break
			}
		}
		c := reader
		if member != 0 {
			c = dialOn(ctx, t, nodes[0], ids[member])
		}
		history := readHistory(ctx, t, c, conv)
		if c != reader {
			c.Close()
		}
		stored := map[string]int64{}
		for i, m := range history {
			if m.Seq != int64(i+1) {
				t.Fatalf("%s: history[%d] has seq %d: seqs are not contiguous from 1", conv, i, m.Seq)
			}
			if m.Kind != "text" {
				continue
			}
			w, ok := sentHere[m.ClientMsgID]
			if !ok {
				t.Errorf("%s seq %d: clientMsgId %s was never sent there", conv, m.Seq, m.ClientMsgID)
				continue
			}
			if prev, dup := stored[m.ClientMsgID]; dup {
				t.Errorf("%s: clientMsgId %s stored twice, at seq %d and %d", conv, m.ClientMsgID, prev, m.Seq)
			}
			stored[m.ClientMsgID] = m.Seq
			if m.Text != w.text || m.Sender.Identity != w.sender {
				t.Errorf("%s seq %d: stored %s %q, sent %s %q", conv, m.Seq, m.Sender.Identity, m.Text, w.sender, w.text)
			}
		}
		total += len(stored)
		if len(stored) != len(sentHere) {
			t.Errorf("%s: %d of %d messages stored", conv, len(stored), len(sentHere))
		}
		for i, s := range sessions {
			if conv != group.ID && conv != direct[i] {
				continue
			}
			for id, a := range s.Acks() {
				if a.ConversationID != conv {
					continue
				}
				if seq, ok := stored[id]; !ok {
					t.Errorf("%s: ack for %s (seq %d) but the message is not in the history of %s", ids[i], id, a.Seq, conv)
				} else if seq != a.Seq {
					t.Errorf("%s: ack for %s said seq %d, history has it at %d", ids[i], id, a.Seq, seq)
				}
			}
			// Each member device converges on exactly the server's
			// history: pushes across nodes, catch-up, gap refills.
			l := s.Log(conv)
			testkit.Poll(ctx, 10*time.Second, 10*time.Millisecond, func() bool { return l.Contiguous() >= int64(len(history)) })
			got := l.Messages()
			if cf := l.Conflicts(); len(cf) > 0 {
				t.Errorf("%s saw contradicting events in %s: %v", ids[i], conv, cf)
			}
			if len(got) != len(history) || l.Contiguous() != int64(len(history)) {
				t.Errorf("%s holds %d events of %s (contiguous to %d, max %d); the server has %d",
					ids[i], len(got), conv, l.Contiguous(), l.Max(), len(history))
				continue
			}
			for j, m := range got {
				if h := history[j]; m.Seq != h.Seq || m.ClientMsgID != h.ClientMsgID || m.Text != h.Text {
					t.Errorf("%s seq %d of %s: holds %s %q, server has %s %q", ids[i], m.Seq, conv, m.ClientMsgID, m.Text, h.ClientMsgID, h.Text)
					break
				}
			}
		}
	}
	t.Logf("%d messages in %d conversations stored and delivered in %v (%.0f msg/s); %d connects, %d sends retried, %d answered as duplicates",
		total, len(want), stormTime.Round(time.Millisecond), float64(total)/stormTime.Seconds(), connects, retries, dups)
}

// dialOn opens a chat connection of identity on node p.
func dialOn(ctx context.Context, t *testing.T, p *testkit.Parley, identity string) *chatload.Conn {
	t.Helper()
	c, err := chatload.Dial(ctx, chatload.DialOptions{URL: "ws://" + p.Host + "/ws", Origin: p.URL,
		Token: clusterToken(t, identity, "", auth.Grants{Chat: true})})
	if err != nil {
		t.Fatalf("%s on %s: %v", identity, p.URL, err)
	}
	return c
}

// readHistory pages a conversation's whole history with chat_range.
func readHistory(ctx context.Context, t *testing.T, c *chatload.Conn, convID string) []chatload.Message {
	t.Helper()
	var all []chatload.Message
	for {
		after := int64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := c.Range(ctx, convID, after, 100)
		if err != nil {
			t.Fatalf("chat_range %s after %d: %v", convID, after, err)
		}
		all = append(all, page.Messages...)
		if !page.More || len(page.Messages) == 0 {
			return all
		}
	}
}
