package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/storetest"
)

// openNodes opens n independent Stores on one schema, as n Parley nodes
// would, each with its own pool of maxConns connections. They open
// concurrently, so the first migration races too.
func openNodes(t *testing.T, schema string, n, maxConns int) []*Store {
	t.Helper()
	nodes := make([]*Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), withParams(t, map[string]string{"application_name": schema}), Options{Schema: schema, MaxConns: maxConns})
			if err != nil {
				t.Errorf("node %d: %v", i, err)
				return
			}
			nodes[i] = s
		})
	}
	wg.Wait()
	for _, s := range nodes {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

func schemaOf(s *Store) string { return s.opts.Schema }

func dedupRaces(nodes []*Store) int64 {
	var n int64
	for _, s := range nodes {
		n += s.dedupRaces.Load()
	}
	return n
}

// The race of issue #16: 10 goroutines on each of 3 connections (three
// nodes with a pool of one) append to one conversation: seqs 1..N exactly.
func TestRaceOneConversationThreeConnections(t *testing.T) {
	const perNode, goroutines, each = 1, 10, 40
	nodes := openNodes(t, freshSchema(t), 3, perNode)
	conv := storetest.MustRoom(t, nodes[0], "race", alice)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*goroutines)
	for n, s := range nodes {
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					if _, _, err := s.Append(t.Context(), storetest.Text(conv.ID, alice, fmt.Sprintf("n%d g%d m%d", n, g, i))); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	want := len(nodes) * goroutines * each
	all := storetest.ReadAll(t, nodes[1], conv.ID)
	if len(all) != want {
		t.Fatalf("%d events, want %d", len(all), want)
	}
	seen := map[string]bool{}
	for _, m := range all {
		if seen[m.Text] {
			t.Fatalf("%q stored twice", m.Text)
		}
		seen[m.Text] = true
	}
	t.Logf("%d appends to one conversation from 3 nodes x 1 connection x %d goroutines in %v (%.0f/s): seqs 1..%d",
		want, goroutines, elapsed.Round(time.Millisecond), float64(want)/elapsed.Seconds(), want)
}

// A retry that reaches another node while its original is still in flight:
// both pass the dedup lookup (nothing is committed yet) and queue on the
// conversation's row lock, held here by a third transaction. When it is
// released one commits; the other bumps the counter after it, fails the
// dedup constraint, rolls back and answers with the original.
func TestRetryRacingItsOriginalOnAnotherNode(t *testing.T) {
	schema := freshSchema(t)
	nodes := openNodes(t, schema, 3, 2)
	ctx := t.Context()
	conv := storetest.MustRoom(t, nodes[0], "r", alice)

	lock, err := nodes[2].pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rollback(ctx, lock)
	if _, err := lock.Exec(ctx, `UPDATE chat_conversations SET last_seq = last_seq WHERE id = $1`, conv.ID); err != nil {
		t.Fatal(err)
	}
	m := storetest.Text(conv.ID, alice, "sent twice")
	type result struct {
		msg chat.Message
		dup bool
		err error
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			r := &results[i]
			r.msg, r.dup, r.err = nodes[i].Append(ctx, m)
		})
	}
	// Both appends wait for the lock before it is released.
	waitFor(t, func() bool {
		var n int
		err := nodes[2].pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, schema).Scan(&n)
		return err == nil && n == 2
	})
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("node %d: %v", i, r.err)
		}
	}
	if results[0].dup == results[1].dup {
		t.Fatalf("dup flags %v and %v: want exactly one original", results[0].dup, results[1].dup)
	}
	if results[0].msg.Seq != 1 || results[1].msg.Seq != 1 || results[0].msg.ServerID != results[1].msg.ServerID {
		t.Fatalf("acks %+v and %+v: want the same event at seq 1", results[0].msg, results[1].msg)
	}
	if got := dedupRaces(nodes); got != 1 {
		t.Fatalf("%d appends answered by the dedup constraint, want 1", got)
	}
	// The loser's bump was rolled back: the next event is seq 2.
	next, _, err := nodes[2].Append(ctx, storetest.Text(conv.ID, alice, "next"))
	if err != nil || next.Seq != 2 {
		t.Fatalf("next append seq %d %v, want 2", next.Seq, err)
	}
	storetest.ReadAll(t, nodes[0], conv.ID)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMultiNodeAppendsWithRetries is several Parley nodes on one database:
// three Stores, each with its own pool, take appends to the same
// conversations from many goroutines; a third of the messages are also
// retried on another node while the original is in flight, and a third
// after it was acknowledged. Every conversation must end with seqs 1..n,
// every client message id stored once, and every ack of one id naming the
// same stored event. The loop is bounded by count and by time.
func TestMultiNodeAppendsWithRetries(t *testing.T) {
	const (
		nodeCount  = 3
		perNode    = 6 // goroutines per node
		perWorker  = 60
		convCount  = 4
		maxConns   = 4
		timeBudget = 60 * time.Second
	)
	nodes := openNodes(t, freshSchema(t), nodeCount, maxConns)
	users := make([]chat.Identity, 6)
	for i := range users {
		users[i] = chat.Identity{ID: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("User %d", i)}
	}
	convs := make([]chat.Conversation, convCount)
	for i := range convs {
		convs[i] = storetest.MustRoom(t, nodes[i%nodeCount], fmt.Sprintf("room-%d", i), users...)
	}

	type ack struct {
		conv     string
		seq      int64
		serverID string
	}
	var (
		mu        sync.Mutex
		acks      = map[string][]ack{} // client msg id -> every ack it got
		originals = map[string]int{}   // client msg id -> acks with dup=false
		failed    atomic.Value
	)
	record := func(m chat.Message, stored chat.Message, dup bool) {
		mu.Lock()
		defer mu.Unlock()
		acks[m.ClientMsgID] = append(acks[m.ClientMsgID], ack{stored.ConversationID, stored.Seq, stored.ServerID})
		if !dup {
			originals[m.ClientMsgID]++
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeBudget+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(timeBudget)
	var sent, concurrentRetries, lateRetries atomic.Int64
	send := func(node int, m chat.Message) {
		stored, dup, err := nodes[node].Append(ctx, m)
		if err != nil {
			failed.CompareAndSwap(nil, fmt.Errorf("node %d append %v: %w", node, m, err))
			return
		}
		record(m, stored, dup)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for n := range nodeCount {
		for g := range perNode {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(n), uint64(g)))
				for i := 0; i < perWorker && time.Now().Before(deadline) && failed.Load() == nil; i++ {
					m := chat.Message{
						ConversationID: convs[rng.IntN(convCount)].ID,
						ClientMsgID:    uuid.NewString(),
						Sender:         users[rng.IntN(len(users))],
						Kind:           chat.EventText,
						Text:           fmt.Sprintf("n%d g%d m%d", n, g, i),
					}
					other := (n + 1 + rng.IntN(nodeCount-1)) % nodeCount
					sent.Add(1)
					switch rng.IntN(3) {
					case 0: // the client gave up waiting and resent through another node
						concurrentRetries.Add(1)
						var both sync.WaitGroup
						both.Go(func() { send(n, m) })
						both.Go(func() { send(other, m) })
						both.Wait()
					case 1: // the ack was lost; the resend comes later, elsewhere
						lateRetries.Add(1)
						send(n, m)
						send(other, m)
					default:
						send(n, m)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}

	stored := map[string]chat.Message{} // client msg id -> stored event
	total := 0
	for _, c := range convs {
		all := storetest.ReadAll(t, nodes[2], c.ID) // fails on a gap or duplicate seq
		for _, m := range all {
			if _, twice := stored[m.ClientMsgID]; twice {
				t.Fatalf("client message id %s stored twice", m.ClientMsgID)
			}
			stored[m.ClientMsgID] = m
		}
		got, err := nodes[1].Conversation(ctx, c.ID)
		if err != nil || got.LastSeq != int64(len(all)) {
			t.Fatalf("%s: last_seq %d (%v), %d events", c.ID, got.LastSeq, err, len(all))
		}
		total += len(all)
	}
	if int64(total) != sent.Load() || len(acks) != total {
		t.Fatalf("%d events stored, %d messages sent, %d acknowledged ids", total, sent.Load(), len(acks))
	}
	for id, as := range acks {
		m, ok := stored[id]
		if !ok {
			t.Fatalf("acknowledged %s is not stored", id)
		}
		if originals[id] != 1 {
			t.Fatalf("%s acknowledged as new %d times, want once", id, originals[id])
		}
		for _, a := range as {
			if a.conv != m.ConversationID || a.seq != m.Seq || a.serverID != m.ServerID {
				t.Fatalf("%s acked as %+v, stored as %s#%d %s", id, a, m.ConversationID, m.Seq, m.ServerID)
			}
		}
	}
	// Each node kept to its pool: the connections it opened are still
	// there (idle), and there are no more than MaxConns per node.
	var conns int
	if err := nodes[0].pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, schemaOf(nodes[0])).Scan(&conns); err != nil {
		t.Fatal(err)
	}
	if conns > nodeCount*maxConns {
		t.Fatalf("%d connections open, want at most %d x %d", conns, nodeCount, maxConns)
	}
	appends := sent.Load() + concurrentRetries.Load() + lateRetries.Load()
	t.Logf("%d nodes x %d goroutines, %d conversations: %d messages (%d retried concurrently on another node, %d retried after the ack), "+
		"%d Append calls in %v (%.0f/s); %d retries answered by the dedup constraint after waiting on the row lock; %d connections for %d nodes of %d",
		nodeCount, perNode, convCount, sent.Load(), concurrentRetries.Load(), lateRetries.Load(),
		appends, elapsed.Round(time.Millisecond), float64(appends)/elapsed.Seconds(), dedupRaces(nodes), conns, nodeCount, maxConns)
}

// An append waiting for a conversation locked by another node gives up
// when its context ends (pgx cancels the statement on the server), and
// leaves no trace: the next append gets seq 1.
func TestAppendWaitingOnLockHonoursContext(t *testing.T) {
	nodes := openNodes(t, freshSchema(t), 2, 2)
	ctx := t.Context()
	conv := storetest.MustRoom(t, nodes[0], "r", alice)
	lock, err := nodes[1].pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rollback(ctx, lock)
	if _, err := lock.Exec(ctx, `UPDATE chat_conversations SET last_seq = last_seq WHERE id = $1`, conv.ID); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = nodes[0].Append(short, storetest.Text(conv.ID, alice, "stuck"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append on a locked conversation: %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("append returned %v after its deadline", waited)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got, _, err := nodes[0].Append(ctx, storetest.Text(conv.ID, alice, "after"))
	if err != nil || got.Seq != 1 {
		t.Fatalf("next append seq %d %v, want 1", got.Seq, err)
	}
}
