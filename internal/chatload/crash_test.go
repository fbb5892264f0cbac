package chatload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestCrashStorm is issue 3's crash test against the real binary: ten
// members of one group conversation send 1,000 messages in a storm, the
// server is killed with SIGKILL at a seeded random moment and restarted on
// the same data directory and port, and the clients reconnect, retry
// their unacked messages with the same clientMsgIds and catch up. Then:
// every acked message is stored exactly once under its acked seq, seqs
// are contiguous from 1, all 1,000 messages are stored once, and every
// client holds exactly the server's history.
//
// CHATLOAD_SEEDS=5,6 replaces the default seeds (to reproduce a failure).
func TestCrashStorm(t *testing.T) {
	seeds := []uint64{1, 7, 42}
	if env := os.Getenv("CHATLOAD_SEEDS"); env != "" {
		seeds = nil
		for _, f := range strings.Split(env, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("CHATLOAD_SEEDS: %q is not a seed", f)
			}
			seeds = append(seeds, v)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("group/seed=%d", seed), func(t *testing.T) { crashStorm(t, seed, ModeGroup) })
	}
	// The room conversation of a call room (chat-only tokens, so no
	// media) goes through the room join path on every reconnect.
	t.Run(fmt.Sprintf("room/seed=%d", seeds[0]+1000), func(t *testing.T) { crashStorm(t, seeds[0]+1000, ModeRoom) })
}

const (
	stormClients   = 10
	stormPerClient = 100
)

func crashStorm(t *testing.T, seed uint64, mode string) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// Kill once this many acks have arrived, plus a sub-millisecond-to-3ms
	// delay so the kill lands between, during and after commits.
	killAfterAcks := 100 + rng.IntN(800)
	killDelay := time.Duration(rng.IntN(3000)) * time.Microsecond
	downFor := time.Duration(100+rng.IntN(400)) * time.Millisecond
	t.Logf("seed %d: SIGKILL after %d acks + %s, restart after %s", seed, killAfterAcks, killDelay, downFor)

	// The storm must not be throttled by the per-connection limits that
	// protect a real server; everything else stays at its default.
	srv := newServer(t, map[string]any{"rate_per_second": 10000, "rate_burst": 10000, "chat_rate_per_second": 10000, "chat_rate_burst": 10000})
	srv.start()

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	ids := make([]string, stormClients)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%02d", i)
	}
	room := ""
	if mode == ModeRoom {
		room = "storm"
	}
	token := func(identity string) func() (string, error) {
		return func() (string, error) { return srv.roomToken(identity, room) }
	}
	tok, err := token(ids[0])()
	if err != nil {
		t.Fatal(err)
	}
	creator, err := Dial(ctx, DialOptions{URL: srv.wsURL(), Origin: srv.base(), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	convID := creator.Joined.ConversationID
	if mode == ModeGroup {
		// Chat adds only identities that have used the server (the
		// tokens here are signed with the API key, not issued by the
		// admin API), so each member opens Parley once first.
		for _, id := range ids[1:] {
			tok, err := token(id)()
			if err != nil {
				t.Fatal(err)
			}
			c, err := Dial(ctx, DialOptions{URL: srv.wsURL(), Origin: srv.base(), Token: tok})
			if err != nil {
				t.Fatalf("first join of %s: %v", id, err)
			}
			c.Close()
		}
		conv, err := creator.CreateGroup(ctx, "storm", ids[1:])
		if err != nil {
			t.Fatalf("chat_group: %v", err)
		}
		convID = conv.ID
	}
	creator.Close()
	if convID == "" {
		t.Fatal("no conversation id")
	}

	sessions := make([]*Session, stormClients)
	type sent struct{ sender, text string }
	want := map[string]sent{} // clientMsgId -> what was sent
	for i, id := range ids {
		sessions[i] = NewSession(SessionOptions{
			URL: srv.wsURL(), Origin: srv.base(), Token: token(id),
			AckTimeout: 3 * time.Second, Window: 4,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		})
		sessions[i].Track(convID)
		for n := range stormPerClient {
			cmid, text := uuid.NewString(), fmt.Sprintf("%s #%03d", id, n)
			want[cmid] = sent{id, text}
			sessions[i].SendWithID(convID, cmid, text)
		}
	}

	var wg sync.WaitGroup
	runCtx, stopClients := context.WithCancel(ctx)
	defer func() { stopClients(); wg.Wait() }()
	start := time.Now()
	for _, s := range sessions {
		wg.Go(func() { _ = s.Run(runCtx) })
	}

	totalAcks := func() int {
		n := 0
		for _, s := range sessions {
			n += s.Stats().Acks
		}
		return n
	}
	for totalAcks() < killAfterAcks {
		if ctx.Err() != nil {
			t.Fatalf("only %d acks before the deadline", totalAcks())
		}
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(killDelay)
	srv.kill()
	killedAt := time.Since(start)
	preKill := map[string]Ack{}
	for _, s := range sessions {
		for id, a := range s.Acks() {
			preKill[id] = a
		}
	}
	t.Logf("killed at %s with %d acks received", killedAt.Round(time.Millisecond), len(preKill))
	time.Sleep(downFor)
	srv.start()

	// Everyone's outbox drains after the restart.
	for {
		pending := 0
		for _, s := range sessions {
			pending += s.Pending()
		}
		if pending == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d messages still unacked at the deadline", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("all acked %s after start", time.Since(start).Round(time.Millisecond))

	history := readHistory(ctx, t, srv, ids[0], convID)

	// Seqs contiguous from 1, and every stored text is one we sent,
	// stored once.
	stored := map[string]int64{}
	texts := map[string]int64{} // texts are unique per sent message: a second copy under another id is a duplicate too
	for i, m := range history {
		if m.Seq != int64(i+1) {
			t.Fatalf("history[%d] has seq %d: seqs are not contiguous from 1", i, m.Seq)
		}
		if m.Kind != "text" {
			continue
		}
		if prev, dup := texts[m.Text]; dup {
			t.Errorf("text %q stored twice, at seq %d and %d", m.Text, prev, m.Seq)
		}
		texts[m.Text] = m.Seq
		w, ok := want[m.ClientMsgID]
		if !ok {
			t.Errorf("seq %d: clientMsgId %s was never sent", m.Seq, m.ClientMsgID)
			continue
		}
		if prev, dup := stored[m.ClientMsgID]; dup {
			t.Errorf("clientMsgId %s stored twice, at seq %d and %d", m.ClientMsgID, prev, m.Seq)
		}
		stored[m.ClientMsgID] = m.Seq
		if m.Text != w.text || m.Sender.Identity != w.sender {
			t.Errorf("seq %d: stored %s %q, sent %s %q", m.Seq, m.Sender.Identity, m.Text, w.sender, w.text)
		}
	}
	if len(stored) != len(want) {
		t.Errorf("%d of %d messages stored", len(stored), len(want))
	}

	// Every ack, before the kill or after, names the seq the message has.
	checkAcks := func(label string, acks map[string]Ack) {
		for id, a := range acks {
			if seq, ok := stored[id]; !ok {
				t.Errorf("%s ack for %s (seq %d) but the message is not in the history", label, id, a.Seq)
			} else if seq != a.Seq {
				t.Errorf("%s ack for %s said seq %d, history has it at %d", label, id, a.Seq, seq)
			}
		}
	}
	checkAcks("pre-kill", preKill)
	var dups, retries, connects, ranges int
	for _, s := range sessions {
		checkAcks("post-restart", s.Acks())
		if f := s.Failed(); len(f) > 0 {
			t.Errorf("messages refused for good: %v", f)
		}
		st := s.Stats()
		dups, retries, connects, ranges = dups+st.Duplicates, retries+st.Retries, connects+st.Connects, ranges+st.RangeRequests
	}
	t.Logf("history %d events; %d acks before the kill; %d sends retried, %d answered as duplicates; %d connects; %d chat_range requests",
		len(history), len(preKill), retries, dups, connects, ranges)

	// Each client converges on exactly the server's history through
	// pushes, its catch-up on reconnect and gap refills.
	deadline := time.Now().Add(10 * time.Second)
	for i, s := range sessions {
		l := s.Log(convID)
		for l.Contiguous() < int64(len(history)) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := l.Messages()
		if c := l.Conflicts(); len(c) > 0 {
			t.Errorf("%s saw contradicting events: %v", ids[i], c)
		}
		if len(got) != len(history) || l.Contiguous() != int64(len(history)) {
			t.Errorf("%s holds %d events (contiguous to %d, max %d); the server has %d",
				ids[i], len(got), l.Contiguous(), l.Max(), len(history))
			continue
		}
		for j, m := range got {
			h := history[j]
			if m.Seq != h.Seq || m.ClientMsgID != h.ClientMsgID || m.Text != h.Text || m.Kind != h.Kind {
				t.Errorf("%s seq %d: holds %s %q, server has seq %d %s %q", ids[i], m.Seq, m.ClientMsgID, m.Text, h.Seq, h.ClientMsgID, h.Text)
				break
			}
		}
	}
}

// readHistory pages the whole conversation forward with chat_range on a
// fresh connection.
func readHistory(ctx context.Context, t *testing.T, srv *server, identity, convID string) []Message {
	t.Helper()
	c, err := srv.dial(ctx, identity)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var all []Message
	for {
		after := int64(0)
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page, err := c.Range(ctx, convID, after, 100)
		if err != nil {
			t.Fatalf("chat_range after %d: %v", after, err)
		}
		all = append(all, page.Messages...)
		if !page.More || len(page.Messages) == 0 {
			return all
		}
	}
}
