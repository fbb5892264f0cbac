package signaling

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// recordingRoutes are the admin API's recordings (docs/admin-api.md,
// Recordings): start and stop a room's recording, list, fetch (with
// range requests) and delete recordings. Without recording they answer
// 404 like any unknown endpoint.
func (s *Server) recordingRoutes(mux *http.ServeMux) {
	if s.rec == nil {
		return
	}
	mux.HandleFunc("GET /api/admin/recordings", s.admin(s.handleAdminRecordings))
	mux.HandleFunc("GET /api/admin/rooms/{room}/recordings", s.admin(s.handleAdminRecordings))
	mux.HandleFunc("POST /api/admin/rooms/{room}/recording/start", s.admin(s.handleAdminRecordingStart))
	mux.HandleFunc("POST /api/admin/rooms/{room}/recording/stop", s.admin(s.handleAdminRecordingStop))
	mux.HandleFunc("GET /api/admin/rooms/{room}/recordings/{id}", s.admin(s.handleAdminRecording))
	mux.HandleFunc("DELETE /api/admin/rooms/{room}/recordings/{id}", s.admin(s.handleAdminRecordingDelete))
	mux.HandleFunc("GET /api/admin/rooms/{room}/recordings/{id}/files/{file}", s.admin(s.handleAdminRecordingFile))
}

type adminRecordingsReply struct {
	Recordings []recording.Manifest `json:"recordings"`
}

// handleAdminRecordings lists one room's recordings, or every room's for
// a caller valid for every room; newest first.
func (s *Server) handleAdminRecordings(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room := r.PathValue("room")
	if room == "" && caller.scope != auth.AllRooms {
		room = caller.scope
	}
	if room != "" && !rooms.ValidName(room) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", rooms.NameRule)
		return
	}
	list, err := s.rec.store.List(room)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if list == nil {
		list = []recording.Manifest{}
	}
	writeJSON(w, http.StatusOK, adminRecordingsReply{Recordings: list})
}

func (s *Server) handleAdminRecordingStart(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room := r.PathValue("room")
	if !rooms.ValidName(room) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", rooms.NameRule)
		return
	}
	m, err := s.rec.start(room, proto.IdentityView{Identity: "admin:" + caller.keyID})
	if err != nil {
		writeRecordingError(w, err)
		return
	}
	s.log.Info("admin: recording started", "room", room, "id", m.ID, "key", caller.keyID)
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleAdminRecordingStop(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room := r.PathValue("room")
	m, err := s.rec.stop(room, &proto.IdentityView{Identity: "admin:" + caller.keyID}, true)
	if err != nil {
		writeRecordingError(w, err)
		return
	}
	s.log.Info("admin: recording stopped", "room", room, "id", m.ID, "key", caller.keyID)
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleAdminRecording(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	m, err := s.rec.store.Get(r.PathValue("room"), r.PathValue("id"))
	if err != nil {
		writeRecordingError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleAdminRecordingDelete(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room, id := r.PathValue("room"), r.PathValue("id")
	if err := s.rec.store.Delete(room, id); err != nil {
		writeRecordingError(w, err)
		return
	}
	s.log.Info("admin: recording deleted", "room", room, "id", id, "key", caller.keyID)
	w.WriteHeader(http.StatusNoContent)
}

// handleAdminRecordingFile serves one file the manifest lists, with
// range requests (players seek, downloads resume); a running
// recording's files are served as far as they are written.
func (s *Server) handleAdminRecordingFile(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	path, err := s.rec.store.Path(r.PathValue("room"), r.PathValue("id"), r.PathValue("file"))
	if err != nil {
		writeRecordingError(w, err)
		return
	}
	f, err := os.Open(path) //nolint:gosec // a path the store vetted against the manifest
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such file")
		return
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	switch filepath.Ext(path) {
	case ".webm":
		w.Header().Set("Content-Type", "video/webm")
	case ".mkv":
		w.Header().Set("Content-Type", "video/x-matroska")
	case ".ogg":
		w.Header().Set("Content-Type", "audio/ogg")
	case ".mp4":
		w.Header().Set("Content-Type", "video/mp4")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+filepath.Base(path)+`"`)
	http.ServeContent(w, r, filepath.Base(path), info.ModTime(), f)
}

func writeRecordingError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, recording.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "not_found", "no such recording")
	case errors.Is(err, recording.ErrRecording), errors.Is(err, recording.ErrNotRecording), errors.Is(err, recording.ErrActive):
		writeJSONError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, recording.ErrBudget):
		writeJSONError(w, http.StatusInsufficientStorage, "budget", err.Error())
	default:
		writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
	}
}
