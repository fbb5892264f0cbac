package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPagesServeTheApp(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/r/standup", "/r/standup?name=Ada", "/r/team%20sync", "/chat"} {
		t.Run(path, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", path, rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			body := rec.Body.String()
			if !strings.Contains(body, `<script type="module" src="/assets/app.js">`) {
				t.Errorf("page does not load the app module")
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") {
				t.Errorf("page has inline script, which the CSP forbids")
			}
		})
	}
}

func TestAssetsHaveContentTypesAndCaching(t *testing.T) {
	h := Handler()
	cases := map[string]string{
		"/assets/app.js":        "text/javascript; charset=utf-8",
		"/assets/signaling.js":  "text/javascript; charset=utf-8",
		"/assets/session.js":    "text/javascript; charset=utf-8",
		"/assets/call.js":       "text/javascript; charset=utf-8",
		"/assets/media.js":      "text/javascript; charset=utf-8",
		"/assets/ui.js":         "text/javascript; charset=utf-8",
		"/assets/chat.js":       "text/javascript; charset=utf-8",
		"/assets/chat-store.js": "text/javascript; charset=utf-8",
		"/assets/chat-ui.js":    "text/javascript; charset=utf-8",
		"/assets/calls.js":      "text/javascript; charset=utf-8",
		"/assets/calls-ui.js":   "text/javascript; charset=utf-8",
		"/assets/messenger.js":  "text/javascript; charset=utf-8",
		"/assets/style.css":     "text/css; charset=utf-8",
		"/assets/icon.svg":      "image/svg+xml",
	}
	for path, want := range cases {
		rec := get(t, h, http.MethodGet, path, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: status %d", path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
		}
		if rec.Body.Len() == 0 {
			t.Errorf("GET %s: empty body", path)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", path, cc)
		}
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", path)
			continue
		}
		again := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag})
		if again.Code != http.StatusNotModified {
			t.Errorf("GET %s with matching ETag: status %d, want 304", path, again.Code)
		}
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	h := Handler()
	for _, path := range []string{
		"/nope", "/r/", "/r/a/b", "/chat/", "/chat/x", "/assets/", "/assets/missing.js", "/assets/index.html",
		"/assets/../web.go", "/static/app.js", "/r/" + strings.Repeat("x", maxRoomLen+1), "/favicon.ico",
	} {
		rec := get(t, h, http.MethodGet, path, nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, rec.Code)
		}
		if rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: 404 without CSP", path)
		}
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	h := Handler()
	if rec := get(t, h, http.MethodHead, "/assets/app.js", nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD: status %d", rec.Code)
	}
	rec := get(t, h, http.MethodPost, "/", nil)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", rec.Code)
	}
	if rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: Allow %q", rec.Header().Get("Allow"))
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/r/x", "/assets/app.js"} {
		rec := get(t, h, http.MethodGet, path, nil)
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP allows unsafe sources: %q", path, csp)
		}
		if v := rec.Header().Get("X-Content-Type-Options"); v != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", path, v)
		}
		if v := rec.Header().Get("Referrer-Policy"); v != "no-referrer" {
			t.Errorf("GET %s: Referrer-Policy %q", path, v)
		}
	}
}

func TestUnknownExtensionIsRejectedAtLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"static/index.html": {Data: []byte("<!doctype html>")},
		"static/data.bin":   {Data: []byte{1, 2, 3}},
	}
	if _, err := newHandler(fsys); err == nil || !strings.Contains(err.Error(), "data.bin") {
		t.Fatalf("newHandler with unknown extension: err = %v, want one naming data.bin", err)
	}
	if _, err := newHandler(fstest.MapFS{"static/app.js": {Data: []byte("x")}}); err == nil {
		t.Fatal("newHandler without index.html: want error")
	}
}

// TestNotFoundPage: unknown paths get a 404 page a person can read, in
// the app's style, not Go's plain text.
func TestNotFoundPage(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/r/a/b", "/chat/x"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		body := rec.Body.String()
		if rec.Code != http.StatusNotFound || !strings.Contains(body, "Page not found") || !strings.Contains(body, `href="/assets/style.css"`) {
			t.Errorf("GET %s: %d %q", p, rec.Code, body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: content type %q", p, ct)
		}
	}
}
