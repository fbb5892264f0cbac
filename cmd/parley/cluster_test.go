package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clusterFile writes a config file in dev mode with a cluster section.
func clusterFile(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(f, []byte("dev: true\nsignaling:\n  listen: 127.0.0.1:7880\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

const pgChat = "chat:\n  store: postgres\n  postgres_url: postgres://postgres@127.0.0.1:5432/test?sslmode=disable\n"

func TestClusterConfig(t *testing.T) {
	ctx := context.Background()
	check := func(file string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, []string{"config", "check", "--config", file}, nil, &out, io.Discard)
		return out.String(), err
	}
	// The default configuration is a single node: no Redis is asked.
	if out, err := check(clusterFile(t, "")); err != nil || strings.Contains(out, "cluster") {
		t.Fatalf("single node: %q %v", out, err)
	}
	// Cluster mode needs the shared chat store.
	_, err := check(clusterFile(t, "cluster:\n  redis_url: redis://127.0.0.1:6379/0\n"))
	if err == nil || !strings.Contains(err.Error(), "chat.store: postgres") {
		t.Fatalf("cluster on SQLite: %v, want a refusal naming chat.store", err)
	}
	// Both services answer; advertise follows signaling.listen.
	good := clusterFile(t, pgChat+"cluster:\n  redis_url: redis://127.0.0.1:6379/0\n")
	out, err := check(good)
	if err != nil || !strings.Contains(out, "cluster: Redis answers") {
		t.Fatalf("%q %v (Redis and PostgreSQL must run on 127.0.0.1: ./scripts/test-services starts them)", out, err)
	}
	cfg, _, err := loadConfig([]string{"--config", good}, nil)
	if err != nil || cfg.Cluster.Advertise != "http://127.0.0.1:7880" {
		t.Fatalf("advertise %q %v, want it from signaling.listen", cfg.Cluster.Advertise, err)
	}
	// An unreachable Redis is named, its password never.
	bad := clusterFile(t, pgChat+"cluster:\n  redis_url: redis://:pw9secret@127.0.0.1:1/0\n")
	_, err = check(bad)
	if err == nil || !strings.Contains(err.Error(), "cluster.redis_url") || strings.Contains(err.Error(), "pw9secret") {
		t.Fatalf("unreachable Redis: %v", err)
	}
	var keys bytes.Buffer
	if err := run(ctx, []string{"config", "keys", "--config", bad}, nil, &keys, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(keys.String(), "pw9secret") || !strings.Contains(keys.String(), "cluster.redis_url") {
		t.Fatalf("config keys shows the Redis password or no cluster.redis_url:\n%s", keys.String())
	}
	// Bad values name their key.
	for body, key := range map[string]string{
		pgChat + "cluster:\n  redis_url: http://x\n":                                "cluster.redis_url",
		pgChat + "cluster:\n  redis_url: redis://127.0.0.1:6379\n  lease_ttl: 1m\n": "cluster.lease_ttl",
	} {
		if _, err := check(clusterFile(t, body)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want an error naming %s", body, err, key)
		}
	}
}
