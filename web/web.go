// Package web serves Parley's browser client: one HTML page, plain ES
// modules and CSS, embedded in the binary so a deployment is a single file.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// assetPrefix is where the embedded files are served. Everything else is a
// page route or a 404.
const assetPrefix = "/assets/"

// maxRoomLen bounds the room segment of a meeting link; the signaling
// server applies the real room-name rules when the client joins.
const maxRoomLen = 128

// contentSecurityPolicy allows scripts and styles only from this origin,
// so an injected string can never execute. 'self' in connect-src also
// covers ws:// and wss:// to the same host (CSP level 3).
const contentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; " +
	"manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes is explicit rather than mime.TypeByExtension because that
// one reads /etc/mime.types, which differs between hosts (some map .js to
// application/x-javascript, which breaks module scripts under nosniff).
var contentTypes = map[string]string{ //nolint:gochecknoglobals // read-only table
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

type handler struct {
	assets map[string]asset // keyed by name relative to static/
	index  asset
}

// Handler returns the http.Handler for the web client: GET / (landing
// page), GET /r/{room} (meeting link), GET /chat (conversations without a
// call) and GET /assets/* (static files).
// Every response carries the security headers; unknown paths get 404.
func Handler() http.Handler {
	h, err := newHandler(staticFS)
	if err != nil {
		// The files are embedded at build time, so this is a programming
		// error caught by the package tests, never a runtime condition.
		panic(err)
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	h := &handler{assets: make(map[string]asset)}
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("embedded file %s has no known content type", p)
		}
		sum := sha256.Sum256(body)
		h.assets[strings.TrimPrefix(p, "static/")] = asset{
			body:        body,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load web assets: %w", err)
	}
	idx, ok := h.assets["index.html"]
	if !ok {
		return nil, fmt.Errorf("load web assets: static/index.html missing")
	}
	h.index = idx
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/", p == "/chat":
		// One page for every view; app.js picks the view from the path.
		serveAsset(w, r, h.index)
	case strings.HasPrefix(p, "/r/"):
		room := strings.TrimPrefix(p, "/r/")
		if room == "" || len(room) > maxRoomLen || strings.Contains(room, "/") {
			notFoundPage(w)
			return
		}
		serveAsset(w, r, h.index)
	case strings.HasPrefix(p, assetPrefix):
		name := strings.TrimPrefix(p, assetPrefix)
		a, ok := h.assets[name]
		if !ok || name == "index.html" {
			http.NotFound(w, r)
			return
		}
		serveAsset(w, r, a)
	default:
		notFoundPage(w)
	}
}

// notFoundBody is the page for unknown paths: in the app's style (the
// stylesheet is the only thing it loads; the CSP allows no inline
// style), with a way back.
const notFoundBody = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<title>Page not found · Parley</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<main class="landing" data-testid="not-found">
  <div class="card">
    <h1 class="brand"><img src="/assets/icon.svg" alt="" width="28" height="28"> Parley</h1>
    <h2>Page not found</h2>
    <p class="muted">There is nothing at this address. If someone sent you a link, check that it was copied whole.</p>
    <a href="/" class="primary button-link">Start or join a call</a>
  </div>
</main>
</body>
</html>
`

// notFoundPage answers 404 with notFoundBody (Go's plain "404 page not
// found" looks broken to a person who followed a link).
func notFoundPage(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(notFoundBody))
}

func setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()")
}

// serveAsset answers with revalidation caching: file names carry no
// content hash, so browsers must check the ETag on every use; a 304 costs
// one round trip and a deploy is picked up immediately.
func serveAsset(w http.ResponseWriter, r *http.Request, a asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
