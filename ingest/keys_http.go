package ingest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// KeysPath is where KeysHandler expects to be mounted (on KeysPath and
// KeysPath + "/").
const KeysPath = "/api/admin/ingress"

const maxKeyRequestBytes = 4 << 10

// KeysHandler serves stream-key management for admins:
//
//	GET    /api/admin/ingress       -> 200 {"keys":[Key...]}   (no secrets)
//	POST   /api/admin/ingress       {"room","name","identity"?}
//	                                -> 201 {"key":Key}         (secret shown once, as "key")
//	DELETE /api/admin/ingress/{id}  -> 200 {"key":Key}         (revoked)
//
// authorize decides per request (signaling's admin-token check); a false
// answer is 401. Errors are {"code","message"} like the rest of the admin
// API.
func (s *KeyStore) KeysHandler(authorize func(*http.Request) bool) http.Handler {
	return NewKeysHandler(s, authorize)
}

// NewKeysHandler is KeysHandler on any StreamKeys (the PostgreSQL store
// in a cluster).
func NewKeysHandler(s StreamKeys, authorize func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authorize == nil || !authorize(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley-admin"`)
			writeJSONError(w, http.StatusUnauthorized, "unauthorized", "admin token required")
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, KeysPath)
		switch {
		case !ok:
			writeJSONError(w, http.StatusNotFound, "not_found", "no such endpoint")
		case rest == "" || rest == "/":
			switch r.Method {
			case http.MethodGet:
				keys, err := s.List(r.Context())
				if err != nil {
					writeJSONError(w, http.StatusInternalServerError, "internal", "list stream keys failed")
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
			case http.MethodPost:
				req, err := decodeKeyRequest(http.MaxBytesReader(w, r.Body, maxKeyRequestBytes))
				if err != nil {
					var tooBig *http.MaxBytesError
					if errors.As(err, &tooBig) {
						writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
						return
					}
					writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
					return
				}
				k, err := s.Create(r.Context(), req)
				if errors.Is(err, ErrInvalid) {
					writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
					return
				}
				if err != nil {
					writeJSONError(w, http.StatusInternalServerError, "internal", "create stream key failed")
					return
				}
				writeJSON(w, http.StatusCreated, map[string]any{"key": k})
			default:
				w.Header().Set("Allow", "GET, POST")
				writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or POST")
			}
		default:
			id := strings.TrimPrefix(rest, "/")
			if id == "" || strings.Contains(id, "/") || len(id) > 64 {
				writeJSONError(w, http.StatusNotFound, "not_found", "no such stream key")
				return
			}
			if r.Method != http.MethodDelete {
				w.Header().Set("Allow", "DELETE")
				writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use DELETE")
				return
			}
			k, err := s.Revoke(r.Context(), id)
			if errors.Is(err, ErrKeyNotFound) {
				writeJSONError(w, http.StatusNotFound, "not_found", "no such stream key")
				return
			}
			if err != nil {
				writeJSONError(w, http.StatusInternalServerError, "internal", "revoke stream key failed")
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"key": k})
		}
	})
}

// decodeKeyRequest reads exactly one JSON object with known fields.
func decodeKeyRequest(r io.Reader) (KeyRequest, error) {
	var req KeyRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, err
		}
		return req, errors.New("malformed JSON body: " + err.Error())
	}
	// Read on to the end of the body, not only what the decoder has
	// buffered: anything but white space after the object is refused.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, err
		}
		return req, errors.New("malformed JSON body: trailing data after the JSON object")
	}
	return req, nil
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // a created key is a secret
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}
