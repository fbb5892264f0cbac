package signaling

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

type devTokenRequest struct {
	Room string `json:"room"`
	Name string `json:"name"`
	// Guest is the credential of an earlier reply (guest.go): the
	// browser asks for its identity back. Unknown or forged: a new one.
	Guest string `json:"guest,omitempty"`
}

// devTokenReply is TokenBody plus the guest credential to keep.
type devTokenReply struct {
	Token string `json:"token"`
	Guest string `json:"guest"`
}

// handleDevToken gives anyone a short guest token (dev mode only). The
// Origin check keeps other sites from minting tokens through a visitor's
// browser.
func (s *Server) handleDevToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.originAllowed(r) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "origin not allowed")
		return
	}
	if !s.devHostAllowed(w, r) || !s.requireJSON(w, r) { // hostcheck.go, adminguard.go
		return
	}
	// Minting is cheap, but an open endpoint still gets a ceiling.
	if !s.devTokens.Allow() {
		writeJSONError(w, http.StatusTooManyRequests, "rate_limited", "too many guest tokens requested; try again shortly")
		return
	}
	var req devTokenRequest
	if !decodeJSONBody(w, r, &req) {
		return
	}
	// An empty room asks for a messaging-only token (the /chat page), as
	// an admin-minted chat link would carry.
	if req.Room != "" && !rooms.ValidName(req.Room) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", rooms.NameRule)
		return
	}
	if utf8.RuneCountInString(strings.TrimSpace(req.Name)) > proto.MaxNameRunes {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "name is too long")
		return
	}
	name := cleanName(req.Name)
	if name == "" {
		name = "Guest"
	}
	identity := s.guestIdentity(req.Guest)
	if identity == "" {
		identity = ids.New("guest-")
	}
	grants := auth.Grants{Publish: true, Subscribe: true, Chat: true}
	if req.Room == "" {
		grants = auth.Grants{Chat: true}
	}
	tok, err := s.keys.Issue(s.keys.DefaultKeyID(), auth.Claims{
		Identity: identity,
		Name:     name,
		Room:     req.Room,
		Grants:   grants,
	}, s.cfg.DevTokenTTL)
	if err != nil {
		s.log.Error("dev token issue failed", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal", "could not issue token")
		return
	}
	writeJSON(w, http.StatusOK, devTokenReply{Token: tok, Guest: s.guestCredential(identity)})
}
