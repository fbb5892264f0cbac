package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// A browser sends a cross-site POST with Content-Type text/plain (or a
// form type) without a CORS preflight, and attaches HTTP Basic
// credentials it has cached for this server. A page elsewhere could then
// mint admin tokens through an operator's browser. The admin API is for
// scripts and tools, not for pages on other sites, so it refuses
// requests a browser marks as cross-site, and takes bodies only as
// application/json (which no cross-site form or simple request can send).

// adminRequestAllowed answers 403 or 415 and returns false for requests
// the admin API refuses before looking at credentials.
func (s *Server) adminRequestAllowed(w http.ResponseWriter, r *http.Request) bool {
	if adminCrossSite(r) {
		s.edge.refuse("cross_site")
		writeJSONError(w, http.StatusForbidden, "forbidden", "cross-site requests to the admin API are refused")
		return false
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return s.requireJSON(w, r)
	}
	return true
}

// adminCrossSite reports a request from a browser page of another origin:
// an Origin that is not this server's host, or (for requests browsers
// send without Origin) Fetch Metadata saying cross-site or same-site.
// Unlike the WebSocket, the admin API does not accept
// signaling.allowed_origins: those are trusted to open call sessions,
// not to act as the operator.
func adminCrossSite(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// requireJSON answers 415 unless the body is declared application/json.
func (s *Server) requireJSON(w http.ResponseWriter, r *http.Request) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		return true
	}
	s.edge.refuse("content_type")
	writeJSONError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	return false
}

// errTrailingData is a JSON body with something after its object.
var errTrailingData = errors.New("trailing data after the JSON object")

// jsonEnd checks that only white space follows the value dec decoded.
func jsonEnd(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errTrailingData
	}
	return nil
}
