package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// envURL names the server the tests use; a local service with trust
// authentication and a database "test" is the default.
const (
	envURL     = "PARLEY_TEST_POSTGRES"
	defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func testURL() string {
	if u := os.Getenv(envURL); u != "" {
		return u
	}
	return defaultURL
}

// unreachable fails the test with how to get a server: these tests never
// skip.
func unreachable(t *testing.T, err error) {
	t.Helper()
	t.Fatalf("PostgreSQL is not reachable at %s: %v\n"+
		"The chat/pgstore tests need a server. ./scripts/test (or ./scripts/test-services alone) installs and starts one\n"+
		"when 127.0.0.1:5432 does not answer;\n"+
		"by hand on Debian: apt-get install postgresql && pg_ctlcluster <version> main start, trust authentication for host 127.0.0.1\n"+
		"in pg_hba.conf, and createdb -U postgres test. Or set %s to the URL of another server.",
		Redact(testURL()), err, envURL)
}

// withParams returns testURL() with extra query parameters (pgx passes
// unknown ones to the server as run-time parameters).
func withParams(t *testing.T, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(testURL())
	if err != nil {
		t.Fatalf("%s is not a URL: %v", envURL, err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	// libpq-style parsing takes '+' literally: spaces must be %20.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// freshSchema creates a schema with a random name for one test and drops
// it (with everything in it) at cleanup, so tests never see each other's
// rows and may run in parallel.
func freshSchema(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "parley_test_" + hex.EncodeToString(b)
	admin(t, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { admin(t, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE") })
	return name
}

// admin runs one statement on a connection of its own. It does not use
// t.Context, which is already cancelled when cleanups run.
func admin(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		unreachable(t, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// openTest opens a Store on schema (closed at cleanup).
func openTest(t *testing.T, schema string, opts Options) *Store {
	t.Helper()
	return openURL(t, testURL(), schema, opts)
}

func openURL(t *testing.T, connString, schema string, opts Options) *Store {
	t.Helper()
	opts.Schema = schema
	s, err := Open(t.Context(), connString, opts)
	if err != nil {
		unreachable(t, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}
