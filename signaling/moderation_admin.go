package signaling

import (
	"errors"
	"net/http"
	"time"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/moderation"
	"github.com/parleyhq/parley/signaling/proto"
)

// The admin API's moderation endpoints (docs/protocol.md, HTTP
// endpoints): a room's settings ahead of time, its lobby and recent
// moderation events.
func (s *Server) moderationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/admin/rooms/{room}/settings", s.admin(s.handleAdminSettings))
	mux.HandleFunc("GET /api/admin/rooms/{room}/moderation", s.admin(s.handleAdminModeration))
}

type adminSettingsReply struct {
	Room     string                 `json:"room"`
	Settings proto.RoomSettingsView `json:"settings"`
}

func (s *Server) handleAdminSettings(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	room := r.PathValue("room")
	if !rooms.ValidName(room) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "room must match [A-Za-z0-9_-]{1,64}")
		return
	}
	var body proto.RoomSettingsBody
	if !decodeJSONBody(w, r, &body) {
		return
	}
	if perr := body.Validate("settings"); perr != nil {
		writeJSONError(w, http.StatusBadRequest, perr.Code, perr.Message)
		return
	}
	settings, err := s.mod.reg.Preset(room, patchOf(&body))
	if errors.Is(err, moderation.ErrTooManyPresets) {
		writeJSONError(w, http.StatusConflict, "conflict", "too many rooms configured ahead")
		return
	}
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	s.mod.settingsChanged(room, settings, proto.IdentityView{})
	s.mod.record(room, "", moderation.ActSettings, "", settingsDetail(settings))
	s.log.Info("room settings set by admin", "room", room, "key", caller.keyID, "settings", settingsDetail(settings))
	writeJSON(w, http.StatusOK, adminSettingsReply{Room: room, Settings: settingsView(settings)})
}

type adminLobbyEntry struct {
	LobbyID   string    `json:"lobbyId"`
	Identity  string    `json:"identity"`
	Name      string    `json:"name"`
	Since     time.Time `json:"since"`
	ExpiresAt time.Time `json:"expiresAt"`
}

type adminModEvent struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail"`
}

type adminModerationReply struct {
	Room     string                 `json:"room"`
	Settings proto.RoomSettingsView `json:"settings"`
	Lobby    []adminLobbyEntry      `json:"lobby"`
	Events   []adminModEvent        `json:"events"`
}

func (s *Server) handleAdminModeration(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	room := r.PathValue("room")
	settings, lobby, events := s.mod.reg.View(room)
	out := adminModerationReply{Room: room, Settings: settingsView(settings), Lobby: []adminLobbyEntry{}, Events: []adminModEvent{}}
	for _, e := range lobby {
		out.Lobby = append(out.Lobby, adminLobbyEntry{LobbyID: e.ID, Identity: e.Identity, Name: e.Name, Since: e.Since, ExpiresAt: e.Expires})
	}
	for _, e := range events {
		out.Events = append(out.Events, adminModEvent{At: e.At, Actor: e.Actor, Action: string(e.Action), Target: e.Target, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, out)
}
