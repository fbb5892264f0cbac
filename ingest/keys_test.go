package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/rtmp"
)

func openTestKeys(t *testing.T, path string) *KeyStore {
	t.Helper()
	ks, err := OpenKeyStore(context.Background(), path, KeyStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	return ks
}

func TestKeyStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", KeyStoreFile)
	ks := openTestKeys(t, path)

	k, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Main Stage"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Secret, "sk_") || len(k.Secret) != 3+32 {
		t.Fatalf("secret %q: want sk_ + 32 chars (192 bits)", k.Secret)
	}
	for _, c := range k.Secret[3:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Fatalf("secret %q is not URL-safe", k.Secret)
		}
	}
	if k.Identity != "ingress-main-stage" || k.Room != "stage" || k.Name != "Main Stage" || k.ID == "" || k.CreatedAt.IsZero() {
		t.Fatalf("key %+v", k)
	}
	k2, err := ks.Create(ctx, KeyRequest{Room: "stage", Name: "Cam 2", Identity: "cam2"})
	if err != nil {
		t.Fatal(err)
	}
	if k2.Secret == k.Secret || k2.ID == k.ID {
		t.Fatal("two keys share a secret or an id")
	}

	b, err := ks.Lookup(ctx, k.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if b != (rtmp.Binding{Room: "stage", Name: "Main Stage", Identity: "ingress-main-stage", KeyID: k.ID}) {
		t.Fatalf("binding %+v", b)
	}
	if _, err := ks.Lookup(ctx, "sk_nope"); !errors.Is(err, rtmp.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := ks.Lookup(ctx, ""); !errors.Is(err, rtmp.ErrUnknownKey) {
		t.Fatalf("empty key: %v", err)
	}

	list, err := ks.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != k.ID || list[1].ID != k2.ID {
		t.Fatalf("list %+v", list)
	}
	for _, x := range list {
		if x.Secret != "" {
			t.Fatal("List shows a secret")
		}
	}

	if b, err := ks.Lookup(ctx, k.Secret); err != nil || b.KeyID != k.ID {
		t.Fatalf("lookup binds key id %q (%v), want %q", b.KeyID, err, k.ID)
	}
	if r, err := ks.Revoked(ctx, k.ID); err != nil || r {
		t.Fatalf("fresh key reported revoked (%v)", err)
	}
	rk, err := ks.Revoke(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ks.Revoked(ctx, k.ID); err != nil || !r {
		t.Fatalf("revoked key not reported revoked (%v)", err)
	}
	if r, err := ks.Revoked(ctx, "IK_missing"); err != nil || !r {
		t.Fatalf("unknown key id should count as revoked (%v)", err)
	}
	if rk.RevokedAt == nil {
		t.Fatal("revoked key has no RevokedAt")
	}
	_, err = ks.Lookup(ctx, k.Secret)
	if !errors.Is(err, rtmp.ErrRevoked) {
		t.Fatalf("revoked key: %v", err)
	}
	if strings.Contains(err.Error(), k.Secret) {
		t.Fatal("error contains the key")
	}
	if _, err := ks.Lookup(ctx, k2.Secret); err != nil {
		t.Fatalf("other key after revoke: %v", err)
	}
	if _, err := ks.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := ks.Revoke(ctx, "IK_missing"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}

	// The file holds hashes, never the key itself.
	_ = ks.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(path + "-wal")
	if strings.Contains(string(raw)+string(wal), k2.Secret) {
		t.Fatal("database file contains a stream key in clear")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("db mode: %v %v", fi.Mode(), err)
	}

	// Reopened, everything is still there.
	ks2 := openTestKeys(t, path)
	if _, err := ks2.Lookup(ctx, k.Secret); !errors.Is(err, rtmp.ErrRevoked) {
		t.Fatalf("after reopen, revoked key: %v", err)
	}
	if _, err := ks2.Lookup(ctx, k2.Secret); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestKeyStoreRejectsBadRequests(t *testing.T) {
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	for _, r := range []KeyRequest{
		{Room: "", Name: "x"},
		{Room: "r", Name: "  "},
		{Room: strings.Repeat("r", 129), Name: "x"},
		{Room: "r", Name: "x\x00y"},
		{Room: "r", Name: "x", Identity: "a\nb"},
		{Room: "r", Name: "\xff"},
	} {
		if _, err := ks.Create(context.Background(), r); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%+v): %v, want ErrInvalid", r, err)
		}
	}
}

func TestDefaultIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"Stage":          "ingress-stage",
		"Main Stage #2!": "ingress-main-stage-2",
		"  --  ":         "ingress-stream",
		"Café Ünïcode":   "ingress-café-ünïcode",
	} {
		if got := DefaultIdentity(in); got != want {
			t.Errorf("DefaultIdentity(%q) = %q, want %q", in, got, want)
		}
	}
	if got := DefaultIdentity(strings.Repeat("é", 200)); len(got) > maxIdentityLen {
		t.Errorf("identity of %d bytes", len(got))
	}
}

// TestKeyStoreTwoHandles: the server and a second handle (as the CLI
// would open) on one file see each other's writes, and concurrent writes
// from both succeed (WAL + busy_timeout).
func TestKeyStoreTwoHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), KeyStoreFile)
	a := openTestKeys(t, path)
	b := openTestKeys(t, path)

	k, err := b.Create(ctx, KeyRequest{Room: "r", Name: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup(ctx, k.Secret); err != nil {
		t.Fatalf("server handle does not see the CLI's key: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for _, h := range []*KeyStore{a, b} {
			wg.Go(func() {
				if _, err := h.Create(ctx, KeyRequest{Room: "r", Name: fmt.Sprint("n", i)}); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent create: %v", err)
	}
	if _, err := b.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup(ctx, k.Secret); !errors.Is(err, rtmp.ErrRevoked) {
		t.Fatalf("server handle after CLI revoke: %v", err)
	}
	list, err := a.List(ctx)
	if err != nil || len(list) != 41 {
		t.Fatalf("list: %d keys, %v", len(list), err)
	}
}

// TestKeyStoreSecondProcess runs the test binary again as a separate
// process (like `parley ingress create` next to a running server) that
// creates keys while this process writes and reads the same file.
func TestKeyStoreSecondProcess(t *testing.T) {
	if path := os.Getenv("PARLEY_INGEST_KEYS_CHILD"); path != "" {
		ks, err := OpenKeyStore(context.Background(), path, KeyStoreOptions{})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		for i := range 30 {
			k, err := ks.Create(context.Background(), KeyRequest{Room: "r", Name: fmt.Sprint("child", i)})
			if err != nil {
				fmt.Println("create:", err)
				os.Exit(3)
			}
			fmt.Println("KEY", k.Secret)
		}
		_ = ks.Close()
		os.Exit(0)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), KeyStoreFile)
	ks := openTestKeys(t, path)
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestKeyStoreSecondProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PARLEY_INGEST_KEYS_CHILD="+path)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Write from this process while the child writes.
	for i := range 30 {
		if _, err := ks.Create(ctx, KeyRequest{Room: "r", Name: fmt.Sprint("parent", i)}); err != nil {
			t.Errorf("parent create: %v", err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out.String())
	}
	var childKeys []string
	for line := range strings.Lines(out.String()) {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "KEY "); ok {
			childKeys = append(childKeys, k)
		}
	}
	if len(childKeys) != 30 {
		t.Fatalf("child made %d keys:\n%s", len(childKeys), out.String())
	}
	for _, k := range childKeys {
		if b, err := ks.Lookup(ctx, k); err != nil || b.Room != "r" {
			t.Fatalf("key from the other process: %+v %v", b, err)
		}
	}
	list, err := ks.List(ctx)
	if err != nil || len(list) != 60 {
		t.Fatalf("list: %d keys, %v", len(list), err)
	}
}
