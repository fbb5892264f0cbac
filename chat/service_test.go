package chat_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/sqlitestore"
)

var (
	alice = chat.Identity{ID: "alice", Name: "Alice"}
	bob   = chat.Identity{ID: "bob", Name: "Bob"}
	carol = chat.Identity{ID: "carol", Name: "Carol"}
)

type fixture struct {
	svc *chat.Service
	reg *prometheus.Registry
}

func newService(t *testing.T, mod func(*chat.Config)) fixture {
	t.Helper()
	cfg := chat.DefaultConfig()
	cfg.DataDir = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	st, err := sqlitestore.Open(t.Context(), filepath.Join(cfg.DataDir, "chat.db"), sqlitestore.OptionsFromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	svc, err := chat.New(cfg, chat.Deps{Store: st, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc, reg}
}

func id() string { return uuid.NewString() }

func TestSendAckAndRetry(t *testing.T) {
	f := newService(t, nil)
	ctx := t.Context()
	room, err := f.svc.JoinRoom(ctx, "standup", alice, chat.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	cid := id()
	ack, err := f.svc.Send(ctx, alice, room.ID, cid, "hello")
	if err != nil || ack.Seq != 1 || ack.Duplicate || ack.ServerID == "" || ack.ClientMsgID != cid {
		t.Fatalf("first send: %+v %v", ack, err)
	}
	again, err := f.svc.Send(ctx, alice, room.ID, cid, "hello")
	if err != nil || !again.Duplicate || again.Seq != ack.Seq || again.ServerID != ack.ServerID {
		t.Fatalf("retry: %+v %v, want original %+v", again, err, ack)
	}
	if got := metricSum(t, f.reg, "parley_chat_duplicates_total"); got != 1 {
		t.Fatalf("duplicates metric %v, want 1", got)
	}
	if got := metricSum(t, f.reg, "parley_chat_events_stored_total"); got != 1 {
		t.Fatalf("stored metric %v, want 1", got)
	}
	if _, err := f.svc.Send(ctx, bob, room.ID, id(), "not joined"); !errors.Is(err, chat.ErrNotMember) {
		t.Fatalf("non-member send: %v", err)
	}
	for _, bad := range []struct {
		text, cid string
		want      error
	}{
		{"", id(), chat.ErrInvalid},
		{strings.Repeat("x", chat.DefaultMaxMessageBytes+1), id(), chat.ErrTooLarge},
		{"ok", "not-a-uuid", chat.ErrInvalid},
	} {
		if _, err := f.svc.Send(ctx, alice, room.ID, bad.cid, bad.text); !errors.Is(err, bad.want) {
			t.Fatalf("send %.10q/%q: %v, want %v", bad.text, bad.cid, err, bad.want)
		}
	}
	if got := metricSum(t, f.reg, "parley_chat_rejected_total"); got != 4 {
		t.Fatalf("rejected metric %v, want 4", got)
	}
}

func TestEditDeletePermissions(t *testing.T) {
	f := newService(t, nil)
	ctx := t.Context()
	room, _ := f.svc.JoinRoom(ctx, "r", alice, chat.RoleMember)
	if _, err := f.svc.JoinRoom(ctx, "r", bob, chat.RoleMember); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.JoinRoom(ctx, "r", carol, chat.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	a1, _ := f.svc.Send(ctx, alice, room.ID, id(), "alice one")
	b2, _ := f.svc.Send(ctx, bob, room.ID, id(), "bob two")

	cases := []struct {
		name string
		do   func() (chat.Ack, error)
		want error
	}{
		{"author edits", func() (chat.Ack, error) { return f.svc.Edit(ctx, alice, room.ID, id(), a1.Seq, "alice one!") }, nil},
		{"other edits", func() (chat.Ack, error) { return f.svc.Edit(ctx, bob, room.ID, id(), a1.Seq, "hacked") }, chat.ErrForbidden},
		{"admin edits", func() (chat.Ack, error) { return f.svc.Edit(ctx, carol, room.ID, id(), a1.Seq, "hacked") }, chat.ErrForbidden},
		{"edit unknown seq", func() (chat.Ack, error) { return f.svc.Edit(ctx, alice, room.ID, id(), 99, "x") }, chat.ErrNotFound},
		{"edit of an edit", func() (chat.Ack, error) { return f.svc.Edit(ctx, alice, room.ID, id(), 3, "x") }, chat.ErrInvalid},
		{"edit empty", func() (chat.Ack, error) { return f.svc.Edit(ctx, alice, room.ID, id(), a1.Seq, " ") }, chat.ErrInvalid},
		{"non-member edits", func() (chat.Ack, error) {
			return f.svc.Edit(ctx, chat.Identity{ID: "dave"}, room.ID, id(), a1.Seq, "x")
		}, chat.ErrNotMember},
		{"other deletes", func() (chat.Ack, error) { return f.svc.Delete(ctx, alice, room.ID, id(), b2.Seq) }, chat.ErrForbidden},
		{"admin deletes", func() (chat.Ack, error) { return f.svc.Delete(ctx, carol, room.ID, id(), b2.Seq) }, nil},
		{"author deletes", func() (chat.Ack, error) { return f.svc.Delete(ctx, alice, room.ID, id(), a1.Seq) }, nil},
		{"delete a delete", func() (chat.Ack, error) { return f.svc.Delete(ctx, alice, room.ID, id(), 5) }, chat.ErrInvalid},
		{"delete seq 0", func() (chat.Ack, error) { return f.svc.Delete(ctx, alice, room.ID, id(), 0) }, chat.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.do(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	page, err := f.svc.Range(ctx, bob.ID, room.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	vis := chat.Fold(page.Messages)
	if len(vis) != 2 || !vis[0].Deleted || vis[0].EditSeq != 3 || !vis[1].Deleted {
		t.Fatalf("folded history %+v: want both messages tombstoned, the first edited", vis)
	}
}

func TestRecordCall(t *testing.T) {
	f := newService(t, nil)
	ctx := t.Context()
	call := chat.CallRecord{CallID: id(), Caller: alice, Callee: bob, Outcome: chat.EventCallMissed, Note: "standup"}
	ack, err := f.svc.RecordCall(ctx, call)
	if err != nil || ack.Seq != 1 {
		t.Fatalf("record: %+v %v", ack, err)
	}
	if again, err := f.svc.RecordCall(ctx, call); err != nil || !again.Duplicate || again.Seq != 1 {
		t.Fatalf("recording the same call twice: %+v %v", again, err)
	}
	declined := chat.CallRecord{CallID: id(), Caller: bob, Callee: alice, Outcome: chat.EventCallDeclined}
	if ack, err := f.svc.RecordCall(ctx, declined); err != nil || ack.Seq != 2 {
		t.Fatalf("declined in the same direct conversation: %+v %v", ack, err)
	}
	if _, err := f.svc.RecordCall(ctx, chat.CallRecord{CallID: id(), Caller: alice, Callee: bob, Outcome: chat.EventText}); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("bad outcome: %v", err)
	}
	list, err := f.svc.Conversations(ctx, bob.ID)
	if err != nil || len(list) != 1 || list[0].Conversation.Kind != chat.KindDirect || list[0].Unread != 1 {
		t.Fatalf("bob's list %+v %v: want one direct conversation with 1 unread (alice's missed call)", list, err)
	}
	dm, _ := f.svc.Direct(ctx, bob, alice)
	page, _ := f.svc.History(ctx, bob.ID, dm.ID, 0, 10)
	if len(page.Messages) != 2 || page.Messages[1].Kind != chat.EventCallMissed || page.Messages[1].Sender.ID != "alice" || page.Messages[1].Text != "standup" {
		t.Fatalf("history %+v", page.Messages)
	}
}

func TestWatermarksAndCatchUp(t *testing.T) {
	f := newService(t, func(c *chat.Config) { c.CatchUpPageMax = 3; c.HistoryPageMax = 4 })
	ctx := t.Context()
	room, _ := f.svc.JoinRoom(ctx, "r", alice, chat.RoleMember)
	f.svc.JoinRoom(ctx, "r", bob, chat.RoleMember)
	g, err := f.svc.CreateGroup(ctx, alice, "trip", []chat.Identity{bob})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := f.svc.Send(ctx, alice, room.ID, id(), "r"); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.Send(ctx, alice, g.ID, id(), "g")

	if w, err := f.svc.MarkDelivered(ctx, bob.ID, room.ID, 2); err != nil || w != (chat.Watermarks{Delivered: 2}) {
		t.Fatalf("delivered: %+v %v", w, err)
	}
	if w, err := f.svc.MarkRead(ctx, bob.ID, room.ID, 1); err != nil || w != (chat.Watermarks{Delivered: 2, Read: 1}) {
		t.Fatalf("read: %+v %v", w, err)
	}
	if w, _ := f.svc.MarkDelivered(ctx, bob.ID, room.ID, 1); w.Delivered != 2 {
		t.Fatalf("delivered went backwards: %+v", w)
	}

	// Bob had room up to seq 1 and had never seen the group; "old" is gone.
	res, err := f.svc.CatchUp(ctx, bob.ID, map[string]int64{room.ID: 1, "old": 4}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Gone) != 1 || res.Gone[0] != "old" || len(res.Conversations) != 2 {
		t.Fatalf("catch up %+v", res)
	}
	byID := map[string]chat.ConversationCatchUp{}
	for _, c := range res.Conversations {
		byID[c.Summary.Conversation.ID] = c
	}
	rc := byID[room.ID]
	if len(rc.Messages) != 3 || rc.Messages[0].Seq != 2 || !rc.More || rc.Summary.Unread != 4 || rc.Summary.Conversation.LastSeq != 5 {
		t.Fatalf("room catch-up: %d msgs first %v more %v unread %d", len(rc.Messages), rc.Messages, rc.More, rc.Summary.Unread)
	}
	gc := byID[g.ID]
	if len(gc.Messages) != 0 || gc.Summary.Unread != 1 || gc.Summary.Role != chat.RoleMember {
		t.Fatalf("group catch-up %+v", gc)
	}
	// The client continues where the page ended.
	rest, err := f.svc.Range(ctx, bob.ID, room.ID, rc.Messages[2].Seq, 0)
	if err != nil || len(rest.Messages) != 1 || rest.Messages[0].Seq != 5 || rest.More {
		t.Fatalf("rest %+v %v", rest, err)
	}
	if _, err := f.svc.CatchUp(ctx, bob.ID, map[string]int64{room.ID: -1}, 0); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("negative seq: %v", err)
	}
	// Page caps: 5 events, cap 4.
	h, _ := f.svc.History(ctx, bob.ID, room.ID, 0, 1000)
	if len(h.Messages) != 4 || !h.More || h.Messages[0].Seq != 5 {
		t.Fatalf("history cap: %d more=%v", len(h.Messages), h.More)
	}
	if _, err := f.svc.History(ctx, carol.ID, room.ID, 0, 10); !errors.Is(err, chat.ErrNotMember) {
		t.Fatalf("stranger reads history: %v", err)
	}
}

func TestGroups(t *testing.T) {
	f := newService(t, func(c *chat.Config) { c.MaxGroupMembers = 3 })
	ctx := t.Context()
	if _, err := f.svc.CreateGroup(ctx, alice, "big", []chat.Identity{bob, carol, {ID: "dave"}}); !errors.Is(err, chat.ErrTooLarge) {
		t.Fatalf("oversized group: %v", err)
	}
	g, err := f.svc.CreateGroup(ctx, alice, "small", []chat.Identity{bob})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AddToGroup(ctx, bob, g.ID, carol); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("member adds: %v", err)
	}
	if err := f.svc.AddToGroup(ctx, alice, g.ID, carol); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Send(ctx, carol, g.ID, id(), "hi all"); err != nil {
		t.Fatalf("added member sends: %v", err)
	}
	room, _ := f.svc.JoinRoom(ctx, "r", alice, chat.RoleAdmin)
	if err := f.svc.AddToGroup(ctx, alice, room.ID, carol); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("AddToGroup on a room: %v", err)
	}
	if _, err := f.svc.SystemNotice(ctx, room.ID, id(), "recording started"); err != nil {
		t.Fatalf("system notice: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := chat.New(chat.DefaultConfig(), chat.Deps{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
	bad := chat.DefaultConfig()
	bad.MaxMessageBytes = 0
	if _, err := chat.New(bad, chat.Deps{}); err == nil || !strings.Contains(err.Error(), "chat.max_message_bytes") {
		t.Fatalf("New with bad config: %v", err)
	}
}

// metricSum adds up every series of a counter family.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestCatchUpTotalBudget: one reconnect returns at most catch_up_total_max
// events across conversations, most recently active first; the rest come
// marked More, without events, for the client to page.
func TestCatchUpTotalBudget(t *testing.T) {
	f := newService(t, func(c *chat.Config) { c.CatchUpPageMax = 3; c.CatchUpTotalMax = 5 })
	ctx := t.Context()
	var ids []string
	for _, title := range []string{"oldest", "middle", "newest"} { // sent in this order: newest is most recent
		g, err := f.svc.CreateGroup(ctx, alice, title, []chat.Identity{bob})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if _, err := f.svc.Send(ctx, alice, g.ID, id(), title); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, g.ID)
		time.Sleep(3 * time.Millisecond) // activity times are milliseconds: keep the order unambiguous
	}
	res, err := f.svc.CatchUp(ctx, bob.ID, map[string]int64{ids[0]: 0, ids[1]: 0, ids[2]: 0}, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]chat.ConversationCatchUp{}
	total := 0
	for _, cu := range res.Conversations {
		got[cu.Summary.Conversation.ID] = cu
		total += len(cu.Messages)
	}
	if total != 5 {
		t.Fatalf("%d events in one catch-up, want the budget of 5", total)
	}
	for i, want := range []struct {
		events int
		more   bool
	}{{0, true}, {2, true}, {3, true}} { // oldest, middle, newest
		cu := got[ids[i]]
		if len(cu.Messages) != want.events || cu.More != want.more {
			t.Errorf("conversation %d: %d events, more %v; want %d, %v", i, len(cu.Messages), cu.More, want.events, want.more)
		}
	}
}
