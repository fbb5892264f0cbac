package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
)

// modes runs a test against both write paths: one transaction per append,
// and group commit.
var modes = []struct {
	name string
	opts Options
}{
	{"single", Options{MaxBatch: 1}},
	{"group_commit", Options{MaxBatch: 64}},
}

func forModes(t *testing.T, f func(t *testing.T, s *Store)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, openTest(t, m.opts)) })
	}
}

func openTest(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "chat.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

var (
	alice = chat.Identity{ID: "alice", Name: "Alice"}
	bob   = chat.Identity{ID: "bob", Name: "Bob"}
	carol = chat.Identity{ID: "carol", Name: "Carol"}
)

func mustRoom(t *testing.T, s *Store, name string, members ...chat.Identity) chat.Conversation {
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

func text(conv string, from chat.Identity, body string) chat.Message {
	return chat.Message{ConversationID: conv, ClientMsgID: uuid.NewString(), Sender: from, Kind: chat.EventText, Text: body}
}

func mustAppend(t *testing.T, s *Store, m chat.Message) chat.Message {
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

func TestConcurrentAppendsGetContiguousSeqs(t *testing.T) {
	const goroutines, each = 10, 200
	forModes(t, func(t *testing.T, s *Store) {
		conv := mustRoom(t, s, "busy", alice, bob)
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := range goroutines {
			from := alice
			if g%2 == 1 {
				from = bob
			}
			wg.Go(func() {
				for i := range each {
					if _, _, err := s.Append(t.Context(), text(conv.ID, from, fmt.Sprintf("g%d m%d", g, i))); err != nil {
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
	})
}

func TestRetryReturnsOriginal(t *testing.T) {
	forModes(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		conv := mustRoom(t, s, "r", alice, bob)
		m := text(conv.ID, alice, "hello")
		first := mustAppend(t, s, m)
		mustAppend(t, s, text(conv.ID, bob, "in between"))
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
	})
}

func TestDedupIsPerSenderAndConversation(t *testing.T) {
	forModes(t, func(t *testing.T, s *Store) {
		conv := mustRoom(t, s, "r", alice, bob)
		other := mustRoom(t, s, "r2", alice)
		id := uuid.NewString()
		a := chat.Message{ConversationID: conv.ID, ClientMsgID: id, Sender: alice, Kind: chat.EventText, Text: "x"}
		b := a
		b.Sender = bob
		c := a
		c.ConversationID = other.ID
		sa, sb, sc := mustAppend(t, s, a), mustAppend(t, s, b), mustAppend(t, s, c)
		if sa.Seq != 1 || sb.Seq != 2 || sc.Seq != 1 {
			t.Fatalf("seqs %d %d %d, want 1 2 1", sa.Seq, sb.Seq, sc.Seq)
		}
	})
}

func TestNonMemberRefused(t *testing.T) {
	forModes(t, func(t *testing.T, s *Store) {
		conv := mustRoom(t, s, "r", alice)
		if _, _, err := s.Append(t.Context(), text(conv.ID, carol, "let me in")); !errors.Is(err, chat.ErrNotMember) {
			t.Fatalf("non-member append: %v, want ErrNotMember", err)
		}
		if _, _, err := s.Append(t.Context(), text("no-such-conv", alice, "x")); !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("unknown conversation: %v, want ErrNotFound", err)
		}
		if _, err := s.Member(t.Context(), conv.ID, carol.ID); !errors.Is(err, chat.ErrNotMember) {
			t.Fatalf("Member: %v, want ErrNotMember", err)
		}
		// The refused append did not use up a seq.
		if got := mustAppend(t, s, text(conv.ID, alice, "ok")); got.Seq != 1 {
			t.Fatalf("seq after refusal = %d, want 1", got.Seq)
		}
	})
}

func TestAppendValidates(t *testing.T) {
	s := openTest(t, Options{MaxMessageBytes: 10})
	conv := mustRoom(t, s, "r", alice)
	cases := []struct {
		name string
		mod  func(*chat.Message)
		want error
	}{
		{"too large", func(m *chat.Message) { m.Text = "12345678901" }, chat.ErrTooLarge},
		{"bad utf8", func(m *chat.Message) { m.Text = "\xff" }, chat.ErrInvalid},
		{"blank", func(m *chat.Message) { m.Text = " \n" }, chat.ErrInvalid},
		{"bad client id", func(m *chat.Message) { m.ClientMsgID = "42" }, chat.ErrInvalid},
		{"edit of future seq", func(m *chat.Message) { m.Kind, m.TargetSeq = chat.EventEdit, 99 }, chat.ErrNotFound},
		{"delete with text", func(m *chat.Message) { m.Kind, m.TargetSeq = chat.EventDelete, 1 }, chat.ErrInvalid},
		{"unknown kind", func(m *chat.Message) { m.Kind = "poke" }, chat.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := text(conv.ID, alice, "fine")
			tc.mod(&m)
			if _, _, err := s.Append(t.Context(), m); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDirectConversationIsSymmetric(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	ab, err := s.EnsureDirect(ctx, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := s.EnsureDirect(ctx, bob, alice)
	if err != nil {
		t.Fatal(err)
	}
	if ab.ID != ba.ID || ab.Kind != chat.KindDirect {
		t.Fatalf("(a,b)=%+v (b,a)=%+v", ab, ba)
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

func TestGroupMembers(t *testing.T) {
	s := openTest(t, Options{})
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

func TestWatermarksAreMonotonic(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	conv := mustRoom(t, s, "r", alice, bob)
	for range 5 {
		mustAppend(t, s, text(conv.ID, alice, "m"))
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

func TestUnreadCountsAndList(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	room := mustRoom(t, s, "r", alice, bob)
	dm, err := s.EnsureDirect(ctx, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustAppend(t, s, text(room.ID, alice, "from alice"))
	}
	mine := mustAppend(t, s, text(room.ID, bob, "from bob")) // own messages are never unread
	mustAppend(t, s, chat.Message{ConversationID: room.ID, ClientMsgID: uuid.NewString(), Sender: bob, Kind: chat.EventEdit, Text: "edited", TargetSeq: mine.Seq})
	time.Sleep(2 * time.Millisecond) // last_at has millisecond resolution
	mustAppend(t, s, chat.Message{ConversationID: dm.ID, ClientMsgID: uuid.NewString(), Sender: alice, Kind: chat.EventCallMissed})

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

func TestRangeAndHistoryPagination(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	conv := mustRoom(t, s, "r", alice)
	for range 10 {
		mustAppend(t, s, text(conv.ID, alice, "m"))
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

func TestReopenKeepsDataAndRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "chat.db")
	ctx := t.Context()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	conv := mustRoom(t, s, "r", alice)
	want := mustAppend(t, s, text(conv.ID, alice, "persist me"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, text(conv.ID, alice, "after close")); err == nil {
		t.Fatal("append after Close succeeded")
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Event(ctx, conv.ID, 1)
	if err != nil || got.ServerID != want.ServerID || got.Text != "persist me" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if _, err := s.writer.ExecContext(ctx, `UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path, Options{}); err == nil {
		t.Fatal("opened a database from a newer schema version")
	}
}

func TestGroupCommitClose(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "c.db"), Options{MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	conv := mustRoom(t, s, "r", alice)
	mustAppend(t, s, text(conv.ID, alice, "one"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(t.Context(), text(conv.ID, alice, "late")); !errors.Is(err, chat.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s2 := openTest(t, Options{MaxBatch: 8})
	conv2 := mustRoom(t, s2, "r", alice)
	if _, _, err := s2.Append(ctx, text(conv2.ID, alice, "cancelled")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v", err)
	}
}

func TestConnectionSettings(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"}, {"synchronous", "2"}, {"foreign_keys", "1"}, {"busy_timeout", "5000"},
	} {
		var got string
		if err := s.writer.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil || got != c.want {
			t.Errorf("writer PRAGMA %s = %q (%v), want %q", c.pragma, got, err, c.want)
		}
	}
	if _, err := s.reader.ExecContext(ctx, `DELETE FROM messages`); err == nil {
		t.Error("reader connection accepted a write; want query_only")
	}
}
