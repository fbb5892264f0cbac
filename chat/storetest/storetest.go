// Package storetest is the conformance suite of chat.Store: the behaviour
// every implementation keeps (seq allocation, retries, membership,
// watermarks, listing, paging, errors), written once and run by each
// implementation's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) chat.Store { return openTestStore(t) })
//	}
//
// It holds no implementation details (files, pragmas, schemas); those stay
// in the implementation's tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
)

// Opener returns a fresh, empty store with default limits
// (chat.DefaultMaxMessageBytes) that nothing else uses, and closes it at
// t's cleanup. Close must be safe to call more than once: the suite closes
// some stores itself.
type Opener func(t *testing.T) chat.Store

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open Opener)
	}{
		{"ConcurrentAppendsGetContiguousSeqs", testConcurrentAppendsGetContiguousSeqs},
		{"RetryReturnsOriginal", testRetryReturnsOriginal},
		{"DedupIsPerSenderAndConversation", testDedupIsPerSenderAndConversation},
		{"NonMemberRefused", testNonMemberRefused},
		{"SystemEventsNeedNoSender", testSystemEvents},
		{"AppendValidates", testAppendValidates},
		{"DirectConversationIsSymmetric", testDirectConversationIsSymmetric},
		{"GroupMembers", testGroupMembers},
		{"WatermarksAreMonotonic", testWatermarksAreMonotonic},
		{"UnreadCountsAndList", testUnreadCountsAndList},
		{"RangeAndHistoryPagination", testRangeAndHistoryPagination},
		{"ConcurrentEnsureRoomIsOneConversation", testConcurrentEnsureRoom},
		{"CancelledContext", testCancelledContext},
		{"CloseIsFinal", testCloseIsFinal},
		{"SummaryIsOneEntryOfTheList", testSummary},
		{"KnownIdentities", testKnownIdentities},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
}

//nolint:gochecknoglobals // read-only fixtures
var (
	alice = chat.Identity{ID: "alice", Name: "Alice"}
	bob   = chat.Identity{ID: "bob", Name: "Bob"}
	carol = chat.Identity{ID: "carol", Name: "Carol"}
)

// MustRoom ensures the room conversation name with members in it.
func MustRoom(t *testing.T, s chat.Store, name string, members ...chat.Identity) chat.Conversation {
	t.Helper()
	c, err := s.EnsureRoom(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if err := s.AddMember(t.Context(), chat.Member{ConversationID: c.ID, Identity: m, Role: chat.RoleMember}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Text is a text message from from in conv with a fresh client id.
func Text(conv string, from chat.Identity, body string) chat.Message {
	return chat.Message{ConversationID: conv, ClientMsgID: uuid.NewString(), Sender: from, Kind: chat.EventText, Text: body}
}

// MustAppend appends m and fails t on an error or a duplicate.
func MustAppend(t *testing.T, s chat.Store, m chat.Message) chat.Message {
	t.Helper()
	got, dup, err := s.Append(t.Context(), m)
	if err != nil {
		t.Fatalf("append %v: %v", m, err)
	}
	if dup {
		t.Fatalf("append %v: unexpected duplicate", m)
	}
	return got
}

// ReadAll pages through a conversation with Range and fails t unless the
// seqs are exactly 1..n (no gap, no duplicate).
func ReadAll(t testing.TB, s chat.MessageStore, convID string) []chat.Message {
	t.Helper()
	var all []chat.Message
	for {
		page, err := s.Range(context.Background(), convID, int64(len(all)), 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		for _, m := range page {
			if m.Seq != int64(len(all)+1) {
				t.Fatalf("%s: seq %d at position %d: gap or duplicate", convID, m.Seq, len(all)+1)
			}
			all = append(all, m)
		}
	}
}

func testConcurrentAppendsGetContiguousSeqs(t *testing.T, open Opener) {
	const goroutines, each = 10, 200
	s := open(t)
	conv := MustRoom(t, s, "busy", alice, bob)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		from := alice
		if g%2 == 1 {
			from = bob
		}
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.Append(t.Context(), Text(conv.ID, from, fmt.Sprintf("g%d m%d", g, i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []chat.Message
	for after := int64(0); ; {
		page, err := s.Range(t.Context(), conv.ID, after, 333)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != goroutines*each {
		t.Fatalf("stored %d events, want %d", len(all), goroutines*each)
	}
	texts := map[string]bool{}
	for i, m := range all {
		if m.Seq != int64(i+1) {
			t.Fatalf("position %d has seq %d: gap or duplicate", i, m.Seq)
		}
		if texts[m.Text] {
			t.Fatalf("text %q stored twice", m.Text)
		}
		texts[m.Text] = true
	}
	c, err := s.Conversation(t.Context(), conv.ID)
	if err != nil || c.LastSeq != goroutines*each {
		t.Fatalf("conversation last seq = %d, %v; want %d", c.LastSeq, err, goroutines*each)
	}
}

func testRetryReturnsOriginal(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	conv := MustRoom(t, s, "r", alice, bob)
	m := Text(conv.ID, alice, "hello")
	first := MustAppend(t, s, m)
	MustAppend(t, s, Text(conv.ID, bob, "in between"))
	// Clients may send the id in upper case on retry; it is the same id.
	retry := m
	retry.ClientMsgID = strings.ToUpper(m.ClientMsgID)
	for range 3 {
		again, dup, err := s.Append(ctx, retry)
		if err != nil || !dup {
			t.Fatalf("retry: dup=%v err=%v", dup, err)
		}
		if again.Seq != first.Seq || again.ServerID != first.ServerID || !again.CreatedAt.Equal(first.CreatedAt) {
			t.Fatalf("retry acked %+v, original %+v", again, first)
		}
	}
	if evs, _ := s.Range(ctx, conv.ID, 0, 10); len(evs) != 2 {
		t.Fatalf("%d events stored, want 2", len(evs))
	}
	// Same id, different body: a client bug, refused loudly.
	bad := m
	bad.Text = "something else"
	if _, _, err := s.Append(ctx, bad); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("reused id with new text: %v, want ErrConflict", err)
	}
}

func testDedupIsPerSenderAndConversation(t *testing.T, open Opener) {
	s := open(t)
	conv := MustRoom(t, s, "r", alice, bob)
	other := MustRoom(t, s, "r2", alice)
	id := uuid.NewString()
	a := chat.Message{ConversationID: conv.ID, ClientMsgID: id, Sender: alice, Kind: chat.EventText, Text: "x"}
	b := a
	b.Sender = bob
	c := a
	c.ConversationID = other.ID
	sa, sb, sc := MustAppend(t, s, a), MustAppend(t, s, b), MustAppend(t, s, c)
	if sa.Seq != 1 || sb.Seq != 2 || sc.Seq != 1 {
		t.Fatalf("seqs %d %d %d, want 1 2 1", sa.Seq, sb.Seq, sc.Seq)
	}
}

func testNonMemberRefused(t *testing.T, open Opener) {
	s := open(t)
	conv := MustRoom(t, s, "r", alice)
	if _, _, err := s.Append(t.Context(), Text(conv.ID, carol, "let me in")); !errors.Is(err, chat.ErrNotMember) {
		t.Fatalf("non-member append: %v, want ErrNotMember", err)
	}
	if _, _, err := s.Append(t.Context(), Text("no-such-conv", alice, "x")); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("unknown conversation: %v, want ErrNotFound", err)
	}
	if _, err := s.Member(t.Context(), conv.ID, carol.ID); !errors.Is(err, chat.ErrNotMember) {
		t.Fatalf("Member: %v, want ErrNotMember", err)
	}
	// The refused append did not use up a seq.
	if got := MustAppend(t, s, Text(conv.ID, alice, "ok")); got.Seq != 1 {
		t.Fatalf("seq after refusal = %d, want 1", got.Seq)
	}
}

func testSystemEvents(t *testing.T, open Opener) {
	s := open(t)
	conv := MustRoom(t, s, "empty") // no members at all
	m := chat.Message{ConversationID: conv.ID, ClientMsgID: uuid.NewString(), Kind: chat.EventSystem, Text: "alice joined"}
	first := MustAppend(t, s, m)
	if first.Seq != 1 || first.Sender.ID != "" {
		t.Fatalf("system event stored as %+v", first)
	}
	again, dup, err := s.Append(t.Context(), m)
	if err != nil || !dup || again.ServerID != first.ServerID {
		t.Fatalf("system event retry: %+v dup=%v %v", again, dup, err)
	}
	if _, _, err := s.Append(t.Context(), chat.Message{ConversationID: "no-such-conv", ClientMsgID: uuid.NewString(), Kind: chat.EventSystem, Text: "x"}); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("system event to unknown conversation: %v, want ErrNotFound", err)
	}
}

func testAppendValidates(t *testing.T, open Opener) {
	s := open(t)
	conv := MustRoom(t, s, "r", alice)
	cases := []struct {
		name string
		mod  func(*chat.Message)
		want error
	}{
		{"too large", func(m *chat.Message) { m.Text = strings.Repeat("x", chat.DefaultMaxMessageBytes+1) }, chat.ErrTooLarge},
		{"bad utf8", func(m *chat.Message) { m.Text = "\xff" }, chat.ErrInvalid},
		{"blank", func(m *chat.Message) { m.Text = " \n" }, chat.ErrInvalid},
		{"bad client id", func(m *chat.Message) { m.ClientMsgID = "42" }, chat.ErrInvalid},
		{"edit of future seq", func(m *chat.Message) { m.Kind, m.TargetSeq = chat.EventEdit, 99 }, chat.ErrNotFound},
		{"delete with text", func(m *chat.Message) { m.Kind, m.TargetSeq = chat.EventDelete, 1 }, chat.ErrInvalid},
		{"unknown kind", func(m *chat.Message) { m.Kind = "poke" }, chat.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Text(conv.ID, alice, "fine")
			tc.mod(&m)
			if _, _, err := s.Append(t.Context(), m); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// None of the refusals used up a seq.
	if got := MustAppend(t, s, Text(conv.ID, alice, "ok")); got.Seq != 1 {
		t.Fatalf("seq after refusals = %d, want 1", got.Seq)
	}
}

func testDirectConversationIsSymmetric(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	ab, err := s.EnsureDirect(ctx, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := s.EnsureDirect(ctx, bob, alice)
	if err != nil {
		t.Fatal(err)
	}
	if ab.ID != ba.ID || ab.Kind != chat.KindDirect || ab.Key != chat.DirectKey(alice.ID, bob.ID) {
		t.Fatalf("(a,b)=%+v (b,a)=%+v", ab, ba)
	}
	if got, err := s.Conversation(ctx, ab.ID); err != nil || got != ab {
		t.Fatalf("Conversation(%s) = %+v %v, want %+v", ab.ID, got, err, ab)
	}
	ac, err := s.EnsureDirect(ctx, alice, carol)
	if err != nil || ac.ID == ab.ID {
		t.Fatalf("(a,c)=%+v err %v: must differ from (a,b)", ac, err)
	}
	for _, id := range []string{alice.ID, bob.ID} {
		if _, err := s.Member(ctx, ab.ID, id); err != nil {
			t.Fatalf("%s not a member of the direct conversation: %v", id, err)
		}
	}
	if err := s.AddMember(ctx, chat.Member{ConversationID: ab.ID, Identity: carol, Role: chat.RoleMember}); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("third member in direct: %v, want ErrForbidden", err)
	}
	if _, err := s.EnsureDirect(ctx, alice, alice); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("direct with self: %v, want ErrInvalid", err)
	}
	// Same room name, same conversation; rooms are separate from directs.
	r1, _ := s.EnsureRoom(ctx, "standup")
	r2, _ := s.EnsureRoom(ctx, "standup")
	if r1.ID != r2.ID || r1.Kind != chat.KindRoom || r1.Key != "standup" {
		t.Fatalf("rooms %+v %+v", r1, r2)
	}
}

func testGroupMembers(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	g, err := s.CreateGroup(ctx, "project", alice, []chat.Identity{bob, alice})
	if err != nil {
		t.Fatal(err)
	}
	ma, err := s.Member(ctx, g.ID, alice.ID)
	if err != nil || ma.Role != chat.RoleAdmin {
		t.Fatalf("creator membership %+v %v, want admin", ma, err)
	}
	mb, err := s.Member(ctx, g.ID, bob.ID)
	if err != nil || mb.Role != chat.RoleMember || mb.Identity.Name != "Bob" {
		t.Fatalf("bob membership %+v %v", mb, err)
	}
	if _, err := s.Member(ctx, g.ID, carol.ID); !errors.Is(err, chat.ErrNotMember) {
		t.Fatalf("carol: %v", err)
	}
	if err := s.AddMember(ctx, chat.Member{ConversationID: "nope", Identity: carol, Role: chat.RoleMember}); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("add to unknown conversation: %v", err)
	}
}

func testWatermarksAreMonotonic(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	conv := MustRoom(t, s, "r", alice, bob)
	for range 5 {
		MustAppend(t, s, Text(conv.ID, alice, "m"))
	}
	steps := []struct {
		in, want chat.Watermarks
		err      error
	}{
		{chat.Watermarks{Delivered: 3}, chat.Watermarks{Delivered: 3}, nil},
		{chat.Watermarks{Delivered: 2}, chat.Watermarks{Delivered: 3}, nil},     // never backwards
		{chat.Watermarks{Read: 4}, chat.Watermarks{Delivered: 4, Read: 4}, nil}, // read implies delivered
		{chat.Watermarks{Read: 1}, chat.Watermarks{Delivered: 4, Read: 4}, nil},
		{chat.Watermarks{Delivered: 6}, chat.Watermarks{}, chat.ErrInvalid}, // beyond last seq
		{chat.Watermarks{Read: -1}, chat.Watermarks{}, chat.ErrInvalid},
		{chat.Watermarks{Delivered: 5}, chat.Watermarks{Delivered: 5, Read: 4}, nil},
	}
	for i, st := range steps {
		got, err := s.AdvanceWatermarks(ctx, conv.ID, bob.ID, st.in)
		if !errors.Is(err, st.err) || (err == nil && got != st.want) {
			t.Fatalf("step %d %+v: got %+v %v, want %+v %v", i, st.in, got, err, st.want, st.err)
		}
	}
	if _, err := s.AdvanceWatermarks(ctx, conv.ID, carol.ID, chat.Watermarks{Read: 1}); !errors.Is(err, chat.ErrNotMember) {
		t.Fatalf("non-member watermark: %v", err)
	}
	if _, err := s.AdvanceWatermarks(ctx, "no-such-conv", bob.ID, chat.Watermarks{Read: 1}); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("unknown conversation watermark: %v", err)
	}
	m, _ := s.Member(ctx, conv.ID, bob.ID)
	if m.Delivered != 5 || m.Read != 4 {
		t.Fatalf("stored marks %d/%d, want 5/4", m.Delivered, m.Read)
	}
	// Rejoining (AddMember again) keeps the marks.
	if err := s.AddMember(ctx, chat.Member{ConversationID: conv.ID, Identity: chat.Identity{ID: "bob", Name: "Robert"}, Role: chat.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	m, _ = s.Member(ctx, conv.ID, bob.ID)
	if m.Delivered != 5 || m.Read != 4 || m.Role != chat.RoleAdmin || m.Identity.Name != "Robert" {
		t.Fatalf("after rejoin %+v", m)
	}
}

func testUnreadCountsAndList(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	room := MustRoom(t, s, "r", alice, bob)
	dm, err := s.EnsureDirect(ctx, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		MustAppend(t, s, Text(room.ID, alice, "from alice"))
	}
	mine := MustAppend(t, s, Text(room.ID, bob, "from bob")) // own messages are never unread
	MustAppend(t, s, chat.Message{ConversationID: room.ID, ClientMsgID: uuid.NewString(), Sender: bob, Kind: chat.EventEdit, Text: "edited", TargetSeq: mine.Seq})
	time.Sleep(2 * time.Millisecond) // stores may keep millisecond resolution
	MustAppend(t, s, chat.Message{ConversationID: dm.ID, ClientMsgID: uuid.NewString(), Sender: alice, Kind: chat.EventCallMissed})

	list, err := s.Conversations(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Conversation.ID != dm.ID || list[1].Conversation.ID != room.ID {
		t.Fatalf("list order %+v, want dm then room", list)
	}
	if list[0].Unread != 1 || list[1].Unread != 3 || list[1].Conversation.LastSeq != 5 {
		t.Fatalf("unread dm=%d room=%d lastseq=%d, want 1, 3, 5", list[0].Unread, list[1].Unread, list[1].Conversation.LastSeq)
	}
	if _, err := s.AdvanceWatermarks(ctx, room.ID, bob.ID, chat.Watermarks{Read: 2}); err != nil {
		t.Fatal(err)
	}
	list, _ = s.Conversations(ctx, bob.ID)
	if list[1].Unread != 1 || list[1].Watermarks.Read != 2 {
		t.Fatalf("after reading to 2: %+v, want 1 unread", list[1])
	}
	alist, _ := s.Conversations(ctx, alice.ID)
	for _, c := range alist {
		if c.Unread != 0 && c.Conversation.ID == dm.ID {
			t.Fatalf("alice's own call entry counted unread: %+v", c)
		}
	}
	if none, err := s.Conversations(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("stranger's list %v %v", none, err)
	}
}

func testRangeAndHistoryPagination(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	conv := MustRoom(t, s, "r", alice)
	for range 10 {
		MustAppend(t, s, Text(conv.ID, alice, "m"))
	}
	seqs := func(ms []chat.Message) []int64 {
		out := []int64{}
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	cases := []struct {
		name  string
		fetch func() ([]chat.Message, error)
		want  []int64
	}{
		{"range from 0", func() ([]chat.Message, error) { return s.Range(ctx, conv.ID, 0, 3) }, []int64{1, 2, 3}},
		{"range middle", func() ([]chat.Message, error) { return s.Range(ctx, conv.ID, 3, 3) }, []int64{4, 5, 6}},
		{"range tail short", func() ([]chat.Message, error) { return s.Range(ctx, conv.ID, 8, 5) }, []int64{9, 10}},
		{"range at end", func() ([]chat.Message, error) { return s.Range(ctx, conv.ID, 10, 5) }, []int64{}},
		{"range past end", func() ([]chat.Message, error) { return s.Range(ctx, conv.ID, 50, 5) }, []int64{}},
		{"history newest", func() ([]chat.Message, error) { return s.History(ctx, conv.ID, 0, 3) }, []int64{10, 9, 8}},
		{"history before 8", func() ([]chat.Message, error) { return s.History(ctx, conv.ID, 8, 3) }, []int64{7, 6, 5}},
		{"history head short", func() ([]chat.Message, error) { return s.History(ctx, conv.ID, 3, 5) }, []int64{2, 1}},
		{"history before 1", func() ([]chat.Message, error) { return s.History(ctx, conv.ID, 1, 5) }, []int64{}},
		{"other conversation", func() ([]chat.Message, error) { return s.Range(ctx, "other", 0, 5) }, []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fetch()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seqs(got)) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", seqs(got), tc.want)
			}
		})
	}
	if _, err := s.Range(ctx, conv.ID, 0, 0); !errors.Is(err, chat.ErrInvalid) {
		t.Fatalf("zero limit: %v", err)
	}
	ev, err := s.Event(ctx, conv.ID, 4)
	if err != nil || ev.Seq != 4 || ev.Sender != alice {
		t.Fatalf("Event(4) = %+v %v", ev, err)
	}
	if _, err := s.Event(ctx, conv.ID, 11); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("Event(11): %v", err)
	}
}

func testConcurrentEnsureRoom(t *testing.T, open Opener) {
	s := open(t)
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := s.EnsureRoom(t.Context(), "lobby")
			ids[i], errs[i] = c.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("EnsureRoom returned %s and %s for one name", ids[0], ids[i])
		}
	}
}

func testCancelledContext(t *testing.T, open Opener) {
	s := open(t)
	conv := MustRoom(t, s, "r", alice)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Append(ctx, Text(conv.ID, alice, "cancelled")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v, want context.Canceled", err)
	}
	if _, err := s.Range(ctx, conv.ID, 0, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled range: %v, want context.Canceled", err)
	}
	// The cancelled append used no seq, and the store still works.
	if got := MustAppend(t, s, Text(conv.ID, alice, "ok")); got.Seq != 1 {
		t.Fatalf("seq after cancelled append = %d, want 1", got.Seq)
	}
}

func testCloseIsFinal(t *testing.T, open Opener) {
	s := open(t)
	conv := MustRoom(t, s, "r", alice)
	MustAppend(t, s, Text(conv.ID, alice, "one"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(t.Context(), Text(conv.ID, alice, "late")); !errors.Is(err, chat.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func testSummary(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	room := MustRoom(t, s, "r", alice, bob)
	group, err := s.CreateGroup(ctx, "g", alice, []chat.Identity{bob})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		MustAppend(t, s, Text(room.ID, alice, "from alice"))
	}
	MustAppend(t, s, Text(group.ID, bob, "from bob"))
	if _, err := s.AdvanceWatermarks(ctx, room.ID, bob.ID, chat.Watermarks{Read: 1}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []chat.Identity{alice, bob} {
		list, err := s.Conversations(ctx, who.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 {
			t.Fatalf("%s lists %d conversations, want 2", who.ID, len(list))
		}
		for _, want := range list {
			got, err := s.Summary(ctx, want.Conversation.ID, who.ID)
			if err != nil || got != want {
				t.Errorf("Summary(%s, %s) = %+v, %v; want %+v", want.Conversation.ID, who.ID, got, err, want)
			}
		}
	}
	got, _ := s.Summary(ctx, room.ID, bob.ID)
	if got.Unread != 2 || got.Watermarks.Read != 1 || got.Conversation.LastSeq != 3 || got.Role != chat.RoleMember {
		t.Errorf("bob's room summary %+v, want 2 unread, read 1, last seq 3, member", got)
	}
	if _, err := s.Summary(ctx, room.ID, carol.ID); !errors.Is(err, chat.ErrNotMember) {
		t.Errorf("stranger's summary: %v, want ErrNotMember", err)
	}
	if _, err := s.Summary(ctx, "no-such-conversation", alice.ID); !errors.Is(err, chat.ErrNotMember) {
		t.Errorf("unknown conversation's summary: %v, want ErrNotMember", err)
	}
}

func testKnownIdentities(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	known := func(id string) bool {
		t.Helper()
		ok, err := s.IdentityKnown(ctx, id)
		if err != nil {
			t.Fatalf("IdentityKnown(%q): %v", id, err)
		}
		return ok
	}
	if known("dave") {
		t.Fatal("an identity nobody used is known")
	}
	// Remembered: known, and remembering again is not an error.
	for range 2 {
		if err := s.RememberIdentity(ctx, "dave"); err != nil {
			t.Fatalf("RememberIdentity: %v", err)
		}
	}
	if !known("dave") {
		t.Fatal("a remembered identity is not known")
	}
	// Concurrent first sightings of one identity all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.RememberIdentity(ctx, "erin")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent RememberIdentity: %v", err)
		}
	}
	if !known("erin") {
		t.Fatal("erin is not known after concurrent remembering")
	}
	// A member of any conversation is known without being remembered.
	if _, err := s.EnsureDirect(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	MustRoom(t, s, "r", carol)
	for _, id := range []string{"alice", "bob", "carol"} {
		if !known(id) {
			t.Fatalf("member %s is not known", id)
		}
	}
	// Identities are matched exactly.
	if known("Dave") || known("dav") {
		t.Fatal("identity matching is not exact")
	}
	// Invalid ids are refused, not stored.
	for _, bad := range []string{"", " dave", "a\x00b", strings.Repeat("x", chat.MaxIDBytes+1)} {
		err := s.RememberIdentity(ctx, bad)
		if !errors.Is(err, chat.ErrInvalid) && !errors.Is(err, chat.ErrTooLarge) {
			t.Fatalf("RememberIdentity(%q): %v, want ErrInvalid or ErrTooLarge", bad, err)
		}
	}
}
