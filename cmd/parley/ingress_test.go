package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/ingest"
)

// With chat.store: postgres (a cluster), `parley ingress create` writes
// the key where the nodes read it, PostgreSQL, not the data directory's
// ingress.db, which no other node would see.
func TestIngressCommandWritesPostgresInCluster(t *testing.T) {
	const base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "parley_cmd_test_" + hex.EncodeToString(b)
	admin := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("PostgreSQL at %s: %v (./scripts/test starts one)", base, err)
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE SCHEMA " + schema)
	t.Cleanup(func() { admin("DROP SCHEMA " + schema + " CASCADE") })

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "parley.yaml")
	cfg := "data_dir: " + filepath.Join(dir, "data") + "\nchat:\n  store: postgres\n  postgres_url: " + base + "&search_path=" + schema + "\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ingressCommand(t.Context(), []string{"create", "--config", cfgFile, "--room", "stage", "--name", "Main camera"}, nil, &out); err != nil {
		t.Fatalf("ingress create: %v", err)
	}
	keys, err := ingest.OpenPGKeyStore(t.Context(), base, ingest.PGKeyStoreOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = keys.Close() }()
	list, err := keys.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Room != "stage" || list[0].Name != "Main camera" {
		t.Fatalf("keys in PostgreSQL after ingress create: %+v", list)
	}
	if !strings.Contains(out.String(), "stream key:") {
		t.Errorf("ingress create printed no stream key:\n%s", out.String())
	}
	if _, err := os.Stat(ingest.KeyStorePath(filepath.Join(dir, "data"))); err == nil {
		t.Errorf("ingress create also made %s", ingest.KeyStorePath(filepath.Join(dir, "data")))
	}
}
