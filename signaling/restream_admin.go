package signaling

import (
	"errors"
	"net/http"

	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// restreamRoutes are the admin API's restream endpoints (docs/admin-api.md,
// Restream): start a room's live restream to an RTMP URL, stop it, and
// read its state. Without recording they answer 404 like any unknown
// endpoint.
func (s *Server) restreamRoutes(mux *http.ServeMux) {
	if s.rst == nil {
		return
	}
	mux.HandleFunc("GET /api/admin/rooms/{room}/restream", s.admin(s.handleAdminRestream))
	mux.HandleFunc("POST /api/admin/rooms/{room}/restream", s.admin(s.handleAdminRestreamStart))
	mux.HandleFunc("DELETE /api/admin/rooms/{room}/restream", s.admin(s.handleAdminRestreamStop))
}

type adminRestreamRequest struct {
	// URL is the RTMP URL with the stream key: kept in memory for the
	// restream's life, never logged or answered.
	URL string `json:"url"`
}

func (s *Server) handleAdminRestream(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	room := r.PathValue("room")
	if !rooms.ValidName(room) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", rooms.NameRule)
		return
	}
	writeJSON(w, http.StatusOK, s.rst.state(room))
}

func (s *Server) handleAdminRestreamStart(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room := r.PathValue("room")
	if !rooms.ValidName(room) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", rooms.NameRule)
		return
	}
	var req adminRestreamRequest
	if !decodeJSONBody(w, r, &req) {
		return
	}
	if err := s.rst.begin(room, req.URL, proto.IdentityView{Identity: "admin:" + caller.keyID}); err != nil {
		writeRestreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.rst.state(room))
}

func (s *Server) handleAdminRestreamStop(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room := r.PathValue("room")
	if err := s.rst.end(room, &proto.IdentityView{Identity: "admin:" + caller.keyID}, recording.RestreamStopped); err != nil {
		writeRestreamError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeRestreamError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errRestreaming):
		writeJSONError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, errNotRestreaming):
		writeJSONError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, sfu.ErrTapped):
		writeJSONError(w, http.StatusConflict, "conflict", "the room's media is taken by as many recorders as it may have")
	case errors.Is(err, recording.ErrRestreamURL):
		writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		writeJSONError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	}
}
