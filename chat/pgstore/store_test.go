package pgstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return openTest(t, freshSchema(t), Options{}) })
}

var alice = chat.Identity{ID: "alice", Name: "Alice"}

// The suite runs with the default limit; the option is honoured too.
func TestMaxMessageBytesOption(t *testing.T) {
	s := openTest(t, freshSchema(t), Options{MaxMessageBytes: 10})
	conv := storetest.MustRoom(t, s, "r", alice)
	if _, _, err := s.Append(t.Context(), storetest.Text(conv.ID, alice, "12345678901")); !errors.Is(err, chat.ErrTooLarge) {
		t.Fatalf("11 bytes with a limit of 10: %v, want ErrTooLarge", err)
	}
	if _, _, err := s.Append(t.Context(), storetest.Text(conv.ID, alice, "1234567890")); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsDataAndRefusesNewerSchema(t *testing.T) {
	schema := freshSchema(t)
	ctx := t.Context()
	s, err := Open(ctx, testURL(), Options{Schema: schema})
	if err != nil {
		unreachable(t, err)
	}
	conv := storetest.MustRoom(t, s, "r", alice)
	want, _, err := s.Append(ctx, storetest.Text(conv.ID, alice, "persist me"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Opening again runs the migration again: nothing to do.
	s = openTest(t, schema, Options{})
	got, err := s.Event(ctx, conv.ID, 1)
	if err != nil || got.ServerID != want.ServerID || got.Text != "persist me" || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("after reopen: %+v %v, want %+v", got, err, want)
	}
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM chat_schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d %v, want %d", v, err, len(migrations))
	}
	if _, err := s.pool.Exec(ctx, `UPDATE chat_schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, testURL(), Options{Schema: schema}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opened a schema of a newer version: %v", err)
	}
}

// Nodes starting together on an empty database: one migrates, the others
// wait for it, all open.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	schema := freshSchema(t)
	const nodes = 4
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), testURL(), Options{Schema: schema, MaxConns: 2}) })
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	var n int
	if err := stores[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM chat_schema_version`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d version rows (%v), want 1", n, err)
	}
}

func TestMissingSchemaRefused(t *testing.T) {
	_, err := Open(t.Context(), testURL(), Options{Schema: "parley_test_does_not_exist"})
	if err == nil || !strings.Contains(err.Error(), "no schema") {
		t.Fatalf("open on a missing schema: %v", err)
	}
}

// A server or role that has synchronous_commit off would acknowledge
// commits not yet on disk; the store's connections turn it back on.
func TestSynchronousCommitForcedOn(t *testing.T) {
	schema := freshSchema(t)
	u := withParams(t, map[string]string{"options": "-c synchronous_commit=off"})
	s := openURL(t, u, schema, Options{MaxConns: 2})
	conn, err := s.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var v string
	if err := conn.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&v); err != nil || v != "on" {
		t.Fatalf("synchronous_commit = %q (%v), want on", v, err)
	}
	// The URL alone does turn it off, so the check above means something.
	var raw string
	if err := conn.QueryRow(t.Context(), `SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'`).Scan(&raw); err != nil || raw != "off" {
		t.Fatalf("the session started with synchronous_commit %q (%v), want off from the URL", raw, err)
	}
}

func TestPoolSizeFromOptions(t *testing.T) {
	s := openTest(t, freshSchema(t), Options{MaxConns: 3})
	if got := s.pool.Config().MaxConns; got != 3 {
		t.Fatalf("MaxConns = %d, want 3", got)
	}
	if got := OptionsFromConfig(chat.Config{PostgresMaxConns: 7}).MaxConns; got != 7 {
		t.Fatalf("OptionsFromConfig: MaxConns %d, want 7", got)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	const pw = "s3cr3t-Pw"
	for _, cs := range []string{
		// Nothing listens on port 1: the connection is refused.
		"postgres://parley:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=2",
		"postgres://parley@127.0.0.1:1/test?sslmode=disable&connect_timeout=2&password=" + pw,
		"host=127.0.0.1 port=1 user=parley password=" + pw + " dbname=test sslmode=disable connect_timeout=2",
		"postgres://parley:" + pw + "@127.0.0.1:1/test?sslmode=bogus", // a parse error
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := Open(ctx, cs, Options{})
		cancel()
		if err == nil {
			t.Fatalf("open %s succeeded", Redact(cs))
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("error shows the password: %v", err)
		}
		t.Logf("%v", err)
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db"},
		{"postgres://u@h/db?password=pw", "postgres://u@h/db?password=xxxxx"},
		{"host=h user=u password=pw dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='p w' dbname=db", "host=h password=xxxxx dbname=db"},
		{"mysql://u:pw@h/db", "(unparsable URL)"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
