package signaling

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// failingStore fails the reads a refill makes while failing is set.
type failingStore struct {
	chat.Store
	failing atomic.Bool
	failed  atomic.Int64
}

var errStoreAway = errors.New("store away (test)")

func (s *failingStore) Conversations(ctx context.Context, identity string) ([]chat.ConversationSummary, error) {
	if s.failing.Load() {
		s.failed.Add(1)
		return nil, errStoreAway
	}
	return s.Store.Conversations(ctx, identity)
}

func (s *failingStore) History(ctx context.Context, convID string, beforeSeq int64, limit int) ([]chat.Message, error) {
	if s.failing.Load() {
		s.failed.Add(1)
		return nil, errStoreAway
	}
	return s.Store.History(ctx, convID, beforeSeq, limit)
}

// A refill whose store read fails is tried again shortly, not only at
// the next outage: Bob gets the message lost in the outage once the
// store answers again, with no new outage.
func TestRefillRetriedAfterFailedRead(t *testing.T) {
	flaky := &failingStore{}
	a, b := startClusterChatWith(t, func(st chat.Store) chat.Store { flaky.Store = st; return flaky })
	runRefill(t, a)
	runRefill(t, b)
	alice, bob := a.joinMessaging("alice"), b.joinMessaging("bob")
	conv := alice.direct("bob")
	bob.waitType(proto.TypeConversation)
	alice.sendText(conv.ID, newClientID(), "before")
	if m := bob.nextMessage(); m.Text != "before" {
		t.Fatalf("bob got %q, want before", m.Text)
	}

	busOf(a).down.Store(true)
	since := time.Now()
	alice.sendText(conv.ID, newClientID(), "lost")
	bob.none(proto.TypeMessage, 200*time.Millisecond)
	busOf(a).down.Store(false)

	flaky.failing.Store(true)
	b.srv.ClusterRefill().Outage(since, true, nil, false)
	deadline := time.Now().Add(3 * time.Second)
	for flaky.failed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refill did not read the store within 3 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bob.none(proto.TypeMessage, 300*time.Millisecond)
	flaky.failing.Store(false)
	start := time.Now()
	if m := bob.nextMessage(); m.Text != "lost" {
		t.Fatalf("bob got %q, want lost", m.Text)
	}
	t.Logf("refilled %v after the store answered again", time.Since(start).Round(time.Millisecond))
	bob.none(proto.TypeMessage, 300*time.Millisecond)
}
