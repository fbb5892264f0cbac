package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
)

// The PostgreSQL tests use the server the chat/pgstore tests use (same
// variable, same default: a local server with trust authentication and a
// database "test") and never skip. Each test works in a schema of its
// own, dropped at cleanup.
const (
	pgTestEnv        = "PARLEY_TEST_POSTGRES"
	pgTestDefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func pgTestURL() string {
	if u := os.Getenv(pgTestEnv); u != "" {
		return u
	}
	return pgTestDefaultURL
}

func pgUnreachable(t *testing.T, err error) {
	t.Helper()
	t.Fatalf("PostgreSQL is not reachable (set %s, default %s): %v\n"+
		"./scripts/test-services starts one; see chat/pgstore's tests for doing it by hand.", pgTestEnv, pgTestDefaultURL, err)
}

// pgAdmin runs one statement on a connection of its own (not on
// t.Context, which is cancelled before cleanups run).
func pgAdmin(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgTestURL())
	if err != nil {
		pgUnreachable(t, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// freshPGSchema creates a randomly named schema for one test.
func freshPGSchema(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "parley_ingest_test_" + hex.EncodeToString(b)
	pgAdmin(t, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { pgAdmin(t, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE") })
	return name
}

// openPGTestKeys opens a store on schema, as one node would (closed at
// cleanup).
func openPGTestKeys(t *testing.T, schema string, opts PGKeyStoreOptions) *PGKeyStore {
	t.Helper()
	opts.Schema = schema
	ks, err := OpenPGKeyStore(context.Background(), pgTestURL(), opts)
	if err != nil {
		pgUnreachable(t, err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	return ks
}

func TestPGKeyStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	schema := freshPGSchema(t)
	ks := openPGTestKeys(t, schema, PGKeyStoreOptions{})

	k, err := ks.Create(ctx, KeyRequest{Room: " stage ", Name: "Main Stage"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Secret, "sk_") || len(k.Secret) != 3+32 || !strings.HasPrefix(k.ID, "IK_") {
		t.Fatalf("key %+v", k)
	}
	if k.Identity != "ingress-main-stage" || k.Room != "stage" || k.CreatedAt.IsZero() || k.CreatedAt.Location() != time.UTC {
		t.Fatalf("key %+v", k)
	}
	k2, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Cam 2", Identity: "cam2"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ks.Lookup(ctx, k.Secret)
	if err != nil || b != (rtmp.Binding{Room: "stage", Name: "Main Stage", Identity: "ingress-main-stage", KeyID: k.ID}) {
		t.Fatalf("binding %+v, %v", b, err)
	}
	for _, bad := range []string{"", "sk_nope", strings.Repeat("k", 257)} {
		if _, err := ks.Lookup(ctx, bad); !errors.Is(err, rtmp.ErrUnknownKey) {
			t.Fatalf("Lookup(%.10q): %v", bad, err)
		}
	}
	list, err := ks.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != k.ID || list[1].ID != k2.ID || list[0].Secret != "" ||
		!list[0].CreatedAt.Equal(k.CreatedAt) || list[0].RevokedAt != nil {
		t.Fatalf("list %+v, %v", list, err)
	}

	if r, err := ks.Revoked(ctx, k.ID); err != nil || r {
		t.Fatalf("fresh key reported revoked (%v)", err)
	}
	rk, err := ks.Revoke(ctx, k.ID)
	if err != nil || rk.RevokedAt == nil || rk.ID != k.ID || rk.Secret != "" {
		t.Fatalf("revoke: %+v, %v", rk, err)
	}
	if r, err := ks.Revoked(ctx, k.ID); err != nil || !r {
		t.Fatalf("revoked key not reported revoked (%v)", err)
	}
	for _, gone := range []string{"IK_missing", "IK_\x00", "\xff"} {
		if r, err := ks.Revoked(ctx, gone); err != nil || !r {
			t.Fatalf("Revoked(%q) = %v, %v: an unknown id counts as revoked", gone, r, err)
		}
		if _, err := ks.Revoke(ctx, gone); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("Revoke(%q): %v", gone, err)
		}
	}
	_, err = ks.Lookup(ctx, k.Secret)
	if !errors.Is(err, rtmp.ErrRevoked) || strings.Contains(err.Error(), k.Secret) {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := ks.Lookup(ctx, k2.Secret); err != nil {
		t.Fatalf("other key after revoke: %v", err)
	}
	again, err := ks.Revoke(ctx, k.ID)
	if err != nil || !again.RevokedAt.Equal(*rk.RevokedAt) {
		t.Fatalf("second revoke: %+v, %v: want the first revocation's time", again, err)
	}
	if _, err := ks.Create(ctx, KeyRequest{Room: "r", Name: "x\x00y"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("control character: %v", err)
	}

	// The table holds hashes, never a key itself.
	conn, err := pgx.Connect(ctx, pgTestURL())
	if err != nil {
		pgUnreachable(t, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	q := `SELECT count(*) FROM ` + pgx.Identifier{schema, PGKeyTable}.Sanitize() +
		` WHERE position($1 in id || key_hash || room || name || identity) > 0`
	for _, secret := range []string{k.Secret, k2.Secret} {
		if err := conn.QueryRow(ctx, q, secret).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a stream key is stored in clear (%d rows, %v)", n, err)
		}
	}
}

// TestPGKeyStoreTwoNodes: two stores on one database, as two nodes of a
// cluster, opened together on an empty schema; each sees the other's
// keys and revocations, concurrent creates from both succeed, and the
// admin API of one node revokes a key made through the other's.
func TestPGKeyStoreTwoNodes(t *testing.T) {
	ctx := context.Background()
	schema := freshPGSchema(t)
	// Opened concurrently: both create the table (under the advisory lock).
	nodes := make([]*PGKeyStore, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { nodes[i], errs[i] = OpenPGKeyStore(ctx, pgTestURL(), PGKeyStoreOptions{Schema: schema}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			pgUnreachable(t, err)
		}
		t.Cleanup(func() { _ = nodes[i].Close() })
	}
	a, b := nodes[0], nodes[1]

	k, err := a.Create(ctx, KeyRequest{Room: "stage", Name: "Node A"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Lookup(ctx, k.Secret); err != nil || got.KeyID != k.ID || got.Room != "stage" {
		t.Fatalf("node b does not find node a's key: %+v, %v", got, err)
	}
	cerrs := make(chan error, 40)
	for i := range 20 {
		for _, n := range nodes {
			wg.Go(func() {
				if _, err := n.Create(ctx, KeyRequest{Room: "r", Name: fmt.Sprint("n", i)}); err != nil {
					cerrs <- err
				}
			})
		}
	}
	wg.Wait()
	close(cerrs)
	for err := range cerrs {
		t.Errorf("concurrent create: %v", err)
	}
	if _, err := b.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup(ctx, k.Secret); !errors.Is(err, rtmp.ErrRevoked) {
		t.Fatalf("node a after node b's revoke: %v", err)
	}
	if r, err := a.Revoked(ctx, k.ID); err != nil || !r {
		t.Fatalf("node a's revocation check: %v, %v", r, err)
	}
	la, erra := a.List(ctx)
	lb, errb := b.List(ctx)
	if erra != nil || errb != nil || len(la) != 41 || fmt.Sprint(la) != fmt.Sprint(lb) {
		t.Fatalf("lists differ or are short: %d %v / %d %v", len(la), erra, len(lb), errb)
	}

	// The admin API: created through node a, revoked through node b.
	ha := NewKeysHandler(a, func(*http.Request) bool { return true })
	hb := NewKeysHandler(b, func(*http.Request) bool { return true })
	rec := httptest.NewRecorder()
	ha.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, KeysPath, strings.NewReader(`{"room":"hall","name":"Admin"}`)))
	var created struct{ Key Key }
	if err := json.Unmarshal(rec.Body.Bytes(), &created); rec.Code != http.StatusCreated || err != nil {
		t.Fatalf("create on node a: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	hb.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, KeysPath+"/"+created.Key.ID, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("revoke on node b: %d %s", rec.Code, rec.Body)
	}
	if _, err := a.Lookup(ctx, created.Key.Secret); !errors.Is(err, rtmp.ErrRevoked) {
		t.Fatalf("node a after the admin revoke on node b: %v", err)
	}
}

// TestKeyStoresAgree runs one table of operations on the SQLite and the
// PostgreSQL store, with the same clock, and wants the same answers
// (ids and secrets, random in both, compared by position).
func TestKeyStoresAgree(t *testing.T) {
	newClock := func() func() time.Time {
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("X", 3600))
		return func() time.Time {
			at = at.Add(1500 * time.Microsecond) // sub-millisecond parts are cut alike
			return at
		}
	}
	sqlite, err := OpenKeyStore(context.Background(), filepath.Join(t.TempDir(), KeyStoreFile), KeyStoreOptions{Now: newClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlite.Close() })
	pg := openPGTestKeys(t, freshPGSchema(t), PGKeyStoreOptions{Now: newClock()})

	got := map[string][]string{}
	for name, ks := range map[string]StreamKeys{"sqlite": sqlite, "postgres": pg} {
		got[name] = runKeyScript(t, ks)
	}
	a, b := got["sqlite"], got["postgres"]
	if len(a) != len(b) {
		t.Fatalf("%d answers from SQLite, %d from PostgreSQL", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("step %d:\n  sqlite:   %s\n  postgres: %s", i, a[i], b[i])
		}
	}
}

// runKeyScript applies the same operations to ks and describes each
// answer, with key ids and secrets replaced by K1, K2... in order of
// creation.
func runKeyScript(t *testing.T, ks StreamKeys) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	var made []Key
	alias := func(s string) string {
		for i, k := range made {
			s = strings.ReplaceAll(s, k.ID, fmt.Sprintf("K%d", i+1))
			if k.Secret != "" {
				s = strings.ReplaceAll(s, k.Secret, fmt.Sprintf("S%d", i+1))
			}
		}
		return s
	}
	describeErr := func(err error) string {
		if err == nil {
			return "ok"
		}
		var class []string
		for _, e := range []error{ErrInvalid, ErrKeyNotFound, rtmp.ErrUnknownKey, rtmp.ErrRevoked} {
			if errors.Is(err, e) {
				class = append(class, e.Error())
			}
		}
		return fmt.Sprintf("%v %q", class, err.Error())
	}
	keyText := func(k Key) string {
		rev := "-"
		if k.RevokedAt != nil {
			rev = k.RevokedAt.Format(time.RFC3339Nano)
		}
		return fmt.Sprintf("%s room=%q name=%q identity=%q created=%s revoked=%s secret=%v",
			k.ID, k.Room, k.Name, k.Identity, k.CreatedAt.Format(time.RFC3339Nano), rev, k.Secret != "")
	}
	secretOf := func(i int) string {
		if i < len(made) {
			return made[i].Secret
		}
		return "sk_missing"
	}
	idOf := func(i int) string {
		if i < len(made) {
			return made[i].ID
		}
		return "IK_missing"
	}

	for _, r := range []KeyRequest{
		{Room: " stage ", Name: " Main Stage "},
		{Room: "stage", Name: "Cam 2", Identity: " cam2 "},
		{Room: "hall", Name: "Café Ünïcode #3"},
		{Room: "", Name: "x"},
		{Room: "r", Name: "  "},
		{Room: strings.Repeat("r", 129), Name: "x"},
		{Room: "r", Name: strings.Repeat("n", 129)},
		{Room: "r", Name: "x", Identity: strings.Repeat("i", 129)},
		{Room: "r", Name: "x\x00y"},
		{Room: "r", Name: "x", Identity: "a\nb"},
		{Room: "r", Name: "\xff"},
		{Room: "", Name: "", Identity: "\x7f"},
	} {
		k, err := ks.Create(ctx, r)
		if err == nil {
			made = append(made, k)
			out = append(out, alias("create "+keyText(k)))
			continue
		}
		out = append(out, "create "+describeErr(err))
	}
	lookup := func(label, key string) {
		b, err := ks.Lookup(ctx, key)
		out = append(out, alias(fmt.Sprintf("lookup %s %+v %s", label, b, describeErr(err))))
	}
	revoke := func(label, id string) {
		k, err := ks.Revoke(ctx, id)
		out = append(out, alias(fmt.Sprintf("revoke %s %s %s", label, keyText(k), describeErr(err))))
	}
	revoked := func(label, id string) {
		r, err := ks.Revoked(ctx, id)
		out = append(out, alias(fmt.Sprintf("revoked? %s %v %s", label, r, describeErr(err))))
	}
	list := func() {
		keys, err := ks.List(ctx)
		var lines []string
		for _, k := range keys {
			lines = append(lines, keyText(k))
		}
		out = append(out, alias(fmt.Sprintf("list %s [%s]", describeErr(err), strings.Join(lines, "; "))))
	}

	lookup("first", secretOf(0))
	lookup("third", secretOf(2))
	lookup("unknown", "sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	lookup("empty", "")
	lookup("too long", strings.Repeat("k", 257))
	lookup("nul", "sk_\x00")
	revoked("first", idOf(0))
	revoke("first", idOf(0))
	revoke("first again", idOf(0))
	revoke("unknown", "IK_missing")
	revoke("nul", "IK_\x00")
	revoke("not utf-8", "\xff\xfe")
	revoked("first", idOf(0))
	revoked("second", idOf(1))
	revoked("unknown", "IK_missing")
	revoked("not utf-8", "\xff")
	lookup("first revoked", secretOf(0))
	lookup("second", secretOf(1))
	list()
	return out
}

// TestPGRevocationEndsStreamOnOtherNode: a WHIP stream lives on node b,
// whose Service checks keys in PostgreSQL; the key is revoked through
// node a's store; node b ends the stream.
func TestPGRevocationEndsStreamOnOtherNode(t *testing.T) {
	ctx := context.Background()
	schema := freshPGSchema(t)
	nodeA := openPGTestKeys(t, schema, PGKeyStoreOptions{})
	nodeB := openPGTestKeys(t, schema, PGKeyStoreOptions{})
	key, err := nodeA.Create(ctx, KeyRequest{Room: "stage", Name: "Browser"})
	if err != nil {
		t.Fatal(err)
	}
	svc, dir, base, v := startWHIP(t, nodeB, func(c *Config) {
		c.ReconnectGrace = 0
		c.KeyCheckInterval = 200 * time.Millisecond
	})
	c := newWHIPClient(t)
	c.publish(base, key.Secret)
	testkit.Eventually(t, 15*time.Second, "viewer on node b receives video", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 20
	})
	pid := svc.Streams()[0].ParticipantID
	if _, err := nodeA.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "node b ends the stream", func() bool {
		return len(svc.Streams()) == 0 && dir.count("remove stage "+pid) == 1
	})
	if resp, body := whipRequest(t, http.MethodPost, base+"/whip", key.Secret, "application/sdp", newWHIPClient(t).offer()); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("publish with the revoked key: %d %s", resp.StatusCode, body)
	}
}

// TestPGKeyStoreErrorsHideThePassword: chat.postgres_url holds a
// password; a failed open names the host and database only.
func TestPGKeyStoreErrorsHideThePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://parley:hunter2@127.0.0.1:1/parley?connect_timeout=2", // nothing listens on port 1
		"postgres://parley:hunter2@127.0.0.1:5432/test?sslmode=disable&nonsense_option=%zz",
	} {
		_, err := OpenPGKeyStore(t.Context(), url, PGKeyStoreOptions{})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("open %s: %v, want an error without the password", strings.ReplaceAll(url, "hunter2", "xxxxx"), err)
		}
	}
}
