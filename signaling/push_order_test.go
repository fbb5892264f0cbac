package signaling

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/wsbatch"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// queueOut is a connection that is only a send queue.
type queueOut struct{ q *wsbatch.Queue }

func (o queueOut) enqueue(msg []byte)             { _, _ = o.q.Push(msg) }
func (o queueOut) sendError(string, *proto.Error) {}
func (o queueOut) sendBye(string)                 {}

// hubConn is a chat session with only a send queue, enough for the hub.
func hubConn(s *Server, identity string) *chatSession {
	ss := &session{s: s, out: queueOut{q: wsbatch.NewQueue(nil, 1024)}, claims: auth.Claims{Identity: identity}, name: identity}
	return &chatSession{s: s, ss: ss}
}

func drained(c *chatSession) []string {
	var out []string
	for _, m := range c.ss.out.(queueOut).q.Take() {
		out = append(out, string(m))
	}
	return out
}

// The hub holds a push that runs ahead of the next seq until the missing
// one arrives, and gives up after pushHoldMax. synctest's fake clock makes
// the hold exact; the hub has no sockets, so nothing blocks outside it.
func TestPushOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := newMetrics(nil, rooms.New(rooms.Config{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{metrics: m}
		h := newHub(m.sessions)
		a, b := hubConn(s, "a"), hubConn(s, "b")
		h.register(a, 0, nil)
		h.register(b, 0, nil)
		h.addMembers("c1", chat.KindGroup, "a", "b")
		push := func(seq int64) { h.pushOrdered("c1", seq, []byte(fmt.Sprint(seq)), a) }

		push(1)
		push(3) // held: 2 is missing
		if got := drained(b); fmt.Sprint(got) != "[1]" {
			t.Fatalf("after 1,3: %v", got)
		}
		push(2)
		if got := drained(b); fmt.Sprint(got) != "[2 3]" {
			t.Fatalf("after 2: %v", got)
		}
		if got := drained(a); len(got) != 0 {
			t.Fatalf("the skipped sender session got %v", got)
		}
		push(5) // 4 never comes
		time.Sleep(pushHoldMax - time.Millisecond)
		if got := drained(b); len(got) != 0 {
			t.Fatalf("released early: %v", got)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got := drained(b); fmt.Sprint(got) != "[5]" {
			t.Fatalf("after the hold: %v", got)
		}
		push(4) // late: still delivered
		push(6)
		if got := drained(b); fmt.Sprint(got) != "[4 6]" {
			t.Fatalf("late and next: %v", got)
		}
		// Too many held pushes are sent at once, in order.
		for seq := int64(8); seq < 8+maxHeldPushes; seq++ {
			push(seq)
		}
		if got := drained(b); len(got) != maxHeldPushes || got[0] != "8" {
			t.Fatalf("overflow sent %d, first %v", len(got), got[:1])
		}
		push(1000) // armed timer must be stopped by close
		h.close()
		h.wait()
		if got := drained(b); len(got) != 0 {
			t.Fatalf("after close: %v", got)
		}
	})
}
