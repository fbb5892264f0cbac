package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/rtmp"
)

func TestKeysHandler(t *testing.T) {
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	h := ks.KeysHandler(func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer admin" })
	do := func(method, path, auth, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, path, rec.Body.String())
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", method, path, rec.Header().Get("Cache-Control"))
		}
		return rec.Code, out
	}

	if code, out := do("GET", KeysPath, "", ""); code != http.StatusUnauthorized || out["code"] != "unauthorized" {
		t.Fatalf("no auth: %d %v", code, out)
	}
	if code, _ := do("POST", KeysPath, "Bearer nope", `{"room":"r","name":"n"}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong auth: %d", code)
	}
	code, out := do("POST", KeysPath, "Bearer admin", `{"room":"stage","name":"Main"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	key := out["key"].(map[string]any)
	secret, _ := key["key"].(string)
	id, _ := key["id"].(string)
	if !strings.HasPrefix(secret, "sk_") || id == "" || key["identity"] != "ingress-main" {
		t.Fatalf("created %v", key)
	}
	if b, err := ks.Lookup(context.Background(), secret); err != nil || b.Room != "stage" {
		t.Fatalf("lookup of created key: %+v %v", b, err)
	}

	code, out = do("GET", KeysPath, "Bearer admin", "")
	keys := out["keys"].([]any)
	if code != http.StatusOK || len(keys) != 1 {
		t.Fatalf("list: %d %v", code, out)
	}
	if _, shown := keys[0].(map[string]any)["key"]; shown {
		t.Fatal("list shows the secret")
	}

	for _, bad := range []string{`{"room":"","name":"x"}`, `{"room":"r"}`, `not json`, `{"room":"r","name":"x","extra":1}`,
		`{"room":"r","name":"x"} {}`, `{"room":"r","name":"` + strings.Repeat("x", 5000) + `"}`} {
		code, out := do("POST", KeysPath, "Bearer admin", bad)
		if code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %.40q: %d %v", bad, code, out)
		}
	}

	if code, out := do("DELETE", KeysPath+"/"+id, "Bearer admin", ""); code != http.StatusOK || out["key"].(map[string]any)["revokedAt"] == nil {
		t.Fatalf("revoke: %d %v", code, out)
	}
	if _, err := ks.Lookup(context.Background(), secret); !errors.Is(err, rtmp.ErrRevoked) {
		t.Fatalf("after revoke: %v", err)
	}
	if code, _ := do("DELETE", KeysPath+"/IK_nope", "Bearer admin", ""); code != http.StatusNotFound {
		t.Fatalf("revoke unknown: %d", code)
	}
	if code, _ := do("PUT", KeysPath, "Bearer admin", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", code)
	}
	if code, _ := do("GET", KeysPath+"/"+id, "Bearer admin", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET one: %d", code)
	}
}

// Finding #17.7: data after the JSON object is refused wherever it is in
// the body, not only in what the decoder happened to buffer.
func TestKeysHandlerRefusesTrailingData(t *testing.T) {
	ks := openTestKeys(t, filepath.Join(t.TempDir(), KeyStoreFile))
	h := ks.KeysHandler(func(*http.Request) bool { return true })
	for _, body := range []string{
		`{"room":"r","name":"n"}` + strings.Repeat(" ", 600) + `garbage`,
		`{"room":"r","name":"n"}` + strings.Repeat("\n", 2000) + `{"room":"s","name":"m"}`,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", KeysPath, strings.NewReader(body)))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "trailing") {
			t.Errorf("body with trailing data after %d bytes: %d %s", len(body)-7, rec.Code, rec.Body)
		}
	}
	keys, err := ks.List(context.Background())
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys created from refused bodies: %v %v", keys, err)
	}
}
