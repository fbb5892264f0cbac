package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/storetest"
)

// modes are the two write paths: one transaction per append,
// and group commit.
var modes = []struct {
	name string
	opts Options
}{
	{"single", Options{MaxBatch: 1}},
	{"group_commit", Options{MaxBatch: 64}},
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

var alice = chat.Identity{ID: "alice", Name: "Alice"}

// TestConformance runs the chat.Store conformance suite against both write
// paths.
func TestConformance(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) chat.Store { return openTest(t, m.opts) })
		})
	}
}

// The suite runs with the default limit; the option is honoured too.
func TestMaxMessageBytesOption(t *testing.T) {
	s := openTest(t, Options{MaxMessageBytes: 10})
	conv := storetest.MustRoom(t, s, "r", alice)
	if _, _, err := s.Append(t.Context(), storetest.Text(conv.ID, alice, "12345678901")); !errors.Is(err, chat.ErrTooLarge) {
		t.Fatalf("11 bytes with a limit of 10: %v, want ErrTooLarge", err)
	}
	storetest.MustAppend(t, s, storetest.Text(conv.ID, alice, "1234567890"))
}

func TestReopenKeepsDataAndRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "chat.db")
	ctx := t.Context()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	conv := storetest.MustRoom(t, s, "r", alice)
	want := storetest.MustAppend(t, s, storetest.Text(conv.ID, alice, "persist me"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(ctx, storetest.Text(conv.ID, alice, "after close")); err == nil {
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
	conv := storetest.MustRoom(t, s, "r", alice)
	storetest.MustAppend(t, s, storetest.Text(conv.ID, alice, "one"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append(t.Context(), storetest.Text(conv.ID, alice, "late")); !errors.Is(err, chat.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s2 := openTest(t, Options{MaxBatch: 8})
	conv2 := storetest.MustRoom(t, s2, "r", alice)
	if _, _, err := s2.Append(ctx, storetest.Text(conv2.ID, alice, "cancelled")); !errors.Is(err, context.Canceled) {
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
