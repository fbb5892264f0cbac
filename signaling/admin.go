package signaling

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 16 << 10

// adminCaller is who an admin request comes from: the key that
// authenticated it and the room(s) it may act on.
type adminCaller struct {
	keyID string
	scope string // a room name or auth.AllRooms
}

func (a adminCaller) allows(room string) bool {
	return a.scope == auth.AllRooms || a.scope == room
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/admin/tokens", s.admin(s.handleAdminToken))
	mux.HandleFunc("GET /api/admin/rooms", s.admin(s.handleAdminRooms))
	mux.HandleFunc("GET /api/admin/rooms/{room}/participants", s.admin(s.handleAdminParticipants))
	mux.HandleFunc("DELETE /api/admin/rooms/{room}/participants/{identity}", s.admin(s.handleAdminRemove))
	mux.HandleFunc("POST /api/admin/rooms/{room}/participants/{identity}/tracks/{sid}/mute", s.admin(s.handleAdminMute))
	s.moderationRoutes(mux) // moderation_admin.go
	s.recordingRoutes(mux)  // recording_admin.go
	s.restreamRoutes(mux)   // restream_admin.go
}

// admin authenticates with a Bearer token carrying the admin grant or
// with HTTP Basic API key:secret (compared in constant time).
func (s *Server) admin(h func(http.ResponseWriter, *http.Request, adminCaller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !s.adminRequestAllowed(w, r) { // cross-site, not JSON (adminguard.go)
			return
		}
		authz := r.Header.Get("Authorization")
		var caller adminCaller
		switch {
		case len(authz) > 7 && strings.EqualFold(authz[:7], "bearer "):
			claims, err := s.keys.Verify(strings.TrimSpace(authz[7:]))
			if err != nil {
				writeJSONError(w, http.StatusUnauthorized, "unauthorized", "invalid or expired token")
				return
			}
			if !claims.Grants.Admin {
				writeJSONError(w, http.StatusForbidden, "forbidden", "token has no admin grant")
				return
			}
			caller = adminCaller{keyID: claims.KeyID, scope: claims.Room}
		default:
			id, secret, ok := r.BasicAuth()
			if !ok || !s.keys.CheckSecret(id, secret) {
				w.Header().Set("WWW-Authenticate", `Basic realm="parley admin"`)
				writeJSONError(w, http.StatusUnauthorized, "unauthorized", "admin credentials required")
				return
			}
			caller = adminCaller{keyID: id, scope: auth.AllRooms}
		}
		if room := r.PathValue("room"); room != "" && !caller.allows(room) {
			writeJSONError(w, http.StatusForbidden, "forbidden", "token is not valid for this room")
			return
		}
		if s.forwardToHost(w, r) { // cluster: the room lives on another node
			return
		}
		h(w, r, caller)
	}
}

type adminTokenRequest struct {
	Room     string   `json:"room"`
	Identity string   `json:"identity"`
	Name     string   `json:"name"`
	TTL      string   `json:"ttl"`
	Grants   []string `json:"grants"`
}

func (s *Server) handleAdminToken(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	var req adminTokenRequest
	if !decodeJSONBody(w, r, &req) {
		return
	}
	grants, err := auth.ParseGrants(req.Grants)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	switch {
	case req.Room == auth.AllRooms && !grants.Admin:
		writeJSONError(w, http.StatusBadRequest, "bad_request", `room "*" is only for admin tokens`)
		return
	case req.Room == "" && !grants.Chat:
		writeJSONError(w, http.StatusBadRequest, "bad_request", "room is required unless the token is messaging-only (grants include chat)")
		return
	case req.Room != auth.AllRooms && req.Room != "" && !rooms.ValidName(req.Room):
		writeJSONError(w, http.StatusBadRequest, "bad_request", rooms.NameRule)
		return
	case !caller.allows(req.Room):
		writeJSONError(w, http.StatusForbidden, "forbidden", "caller may not issue tokens for this room")
		return
	case req.Identity == "" || len(req.Identity) > 128 || !utf8.ValidString(req.Identity):
		writeJSONError(w, http.StatusBadRequest, "bad_request", "identity must be 1 to 128 bytes")
		return
	case utf8.RuneCountInString(req.Name) > proto.MaxNameRunes:
		writeJSONError(w, http.StatusBadRequest, "bad_request", "name is too long")
		return
	}
	ttl := time.Hour
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			writeJSONError(w, http.StatusBadRequest, "bad_request", `ttl must be a positive duration such as "1h"`)
			return
		}
	}
	if ttl > s.cfg.MaxTokenTTL {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "ttl exceeds max_token_ttl ("+s.cfg.MaxTokenTTL.String()+")")
		return
	}
	tok, err := s.keys.Issue(caller.keyID, auth.Claims{
		Identity: req.Identity, Name: cleanName(req.Name), Room: req.Room, Grants: grants,
	}, ttl)
	if err != nil {
		s.log.Error("admin token issue failed", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal", "could not issue token")
		return
	}
	// Someone the operator issued a token to can be messaged before
	// they first connect (known.go).
	s.rememberIdentity(req.Identity)
	writeJSON(w, http.StatusOK, proto.TokenBody{Token: tok})
}

type adminRoom struct {
	Name         string `json:"name"`
	Participants int    `json:"participants"`
	// Node is the cluster node that hosts the room (cluster mode only).
	Node string `json:"node,omitempty"`
}

func (s *Server) handleAdminRooms(w http.ResponseWriter, r *http.Request, caller adminCaller) {
	list := s.dir.Rooms(caller.allows)
	out := make([]adminRoom, 0, len(list))
	for _, room := range list {
		out = append(out, adminRoom{Name: room.Name, Participants: room.Participants, Node: s.nodeID()})
	}
	if s.peers == nil || forwarded(r) {
		writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
		return
	}
	rooms, unreachable := s.peerRooms(r)
	writeJSON(w, http.StatusOK, map[string]any{"rooms": append(out, rooms...), "unreachable": unreachable})
}

// AdminReceiver is one subscriber of a track in the admin API, with what
// the SFU sent it of the track (sfu.ReceiverStats).
type AdminReceiver struct {
	Participant string `json:"participant"`
	Layer       string `json:"layer,omitempty"`
	// Temporal: the highest VP8 temporal layer of Layer forwarded when
	// the SFU leaves frames out for bandwidth; -1: every frame.
	Temporal       int    `json:"temporal"`
	EstimatedBps   int    `json:"estimatedBps,omitempty"`
	PacketsSent    uint64 `json:"packetsSent"`
	BytesSent      uint64 `json:"bytesSent"`
	RTXPacketsSent uint64 `json:"rtxPacketsSent"`
	RTXBytesSent   uint64 `json:"rtxBytesSent"`
	// LayerSince: when the SFU started forwarding Layer to it.
	LayerSince *time.Time `json:"layerSince,omitempty"`
	// View: the subscriber's last video_view report of the track (absent
	// before one).
	View *AdminTileView `json:"view,omitempty"`
}

// AdminTileView is a subscriber's report of how it shows a video track.
type AdminTileView struct {
	Width   int  `json:"width"`
	Height  int  `json:"height"`
	Visible bool `json:"visible"`
}

// AdminLayer is one simulcast layer of a track as it arrives.
type AdminLayer struct {
	RID         string     `json:"rid"`
	BitrateBps  float64    `json:"bitrateBps"`
	LastMediaAt *time.Time `json:"lastMediaAt,omitempty"`
}

// AdminTrackStats are a track's SFU counters in the admin API.
type AdminTrackStats struct {
	Codec         string  `json:"codec"`
	Packets       uint64  `json:"packets"`
	Bytes         uint64  `json:"bytes"`
	BitrateBps    float64 `json:"bitrateBps"`
	PacketsLost   uint64  `json:"packetsLost"`
	FractionLost  float64 `json:"fractionLost"`
	JitterMs      float64 `json:"jitterMs"`
	NACKsReceived uint64  `json:"nacksReceived"`
	NACKsSent     uint64  `json:"nacksSent"`
	Retransmits   uint64  `json:"retransmits"`
	RTXSent       uint64  `json:"rtxSent"`     // of Retransmits, those on subscribers' RTX streams
	RTXReceived   uint64  `json:"rtxReceived"` // retransmissions from the publisher's RTX stream
	PLIsReceived  uint64  `json:"plisReceived"`
	PLIsSent      uint64  `json:"plisSent"`
	Subscribers   int     `json:"subscribers"`
	// Receivers: each subscriber (by participant sid) with the simulcast
	// layer (rid) it receives now and its estimated bandwidth.
	Receivers []AdminReceiver `json:"receivers"`
	// Layers: the simulcast layers as they arrive, lowest first.
	Layers       []AdminLayer      `json:"layers,omitempty"`
	Drops        map[string]uint64 `json:"drops"`
	LastPacketAt *time.Time        `json:"lastPacketAt,omitempty"`
}

type adminTrack struct {
	proto.TrackView
	Stats *AdminTrackStats `json:"stats"`
}

type adminParticipant struct {
	SID      string       `json:"sid"`
	Identity string       `json:"identity"`
	Name     string       `json:"name"`
	JoinedAt time.Time    `json:"joinedAt"`
	Grants   auth.Grants  `json:"grants"`
	Tracks   []adminTrack `json:"tracks"`
	// ClientStats is the participant's latest client_stats summary
	// (client_stats.go); absent until its client sent one.
	ClientStats *adminClientStats `json:"clientStats,omitempty"`
}

func (s *Server) handleAdminParticipants(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	roomName := r.PathValue("room")
	// Ask the SFU before taking our lock: Media is never called under it.
	stats := map[string]sfu.TrackStats{}
	for _, st := range s.media.RoomStats(roomName) {
		stats[st.SID] = st
	}
	list, ok := s.dir.Participants(roomName)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such room")
		return
	}
	out := make([]adminParticipant, 0, len(list))
	for _, p := range list {
		v := p.View
		ap := adminParticipant{SID: v.SID, Identity: v.Identity, Name: v.Name, JoinedAt: p.JoinedAt, Grants: p.Grants, Tracks: []adminTrack{}}
		for _, t := range v.Tracks {
			at := adminTrack{TrackView: t}
			if st, ok := stats[t.SID]; ok {
				at.Stats = adminStats(st)
			}
			ap.Tracks = append(ap.Tracks, at)
		}
		ap.ClientStats = s.clientStats.view(v.SID)
		out = append(out, ap)
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": roomName, "participants": out})
}

func adminStats(st sfu.TrackStats) *AdminTrackStats {
	a := &AdminTrackStats{
		Codec: st.Codec, Packets: st.Packets, Bytes: st.Bytes, BitrateBps: st.BitrateBps,
		PacketsLost: st.PacketsLost, FractionLost: st.FractionLost, JitterMs: st.JitterMs,
		NACKsReceived: st.NACKsReceived, NACKsSent: st.NACKsSent, Retransmits: st.Retransmits,
		RTXSent: st.RTXSent, RTXReceived: st.RTXReceived,
		PLIsReceived: st.PLIsReceived, PLIsSent: st.PLIsSent, Subscribers: st.Subscribers,
		Drops: st.Drops, Receivers: make([]AdminReceiver, 0, len(st.Receivers)),
	}
	for _, r := range st.Receivers {
		ar := AdminReceiver{Participant: r.ParticipantID, Layer: r.Layer, Temporal: r.Temporal,
			EstimatedBps: r.EstimatedBps, PacketsSent: r.PacketsSent, BytesSent: r.BytesSent,
			RTXPacketsSent: r.RTXPacketsSent, RTXBytesSent: r.RTXBytesSent, LayerSince: timeOrNil(r.LayerSince)}
		if v := r.View; v != nil {
			ar.View = &AdminTileView{Width: v.Width, Height: v.Height, Visible: v.Visible}
		}
		a.Receivers = append(a.Receivers, ar)
	}
	for _, l := range st.Layers {
		a.Layers = append(a.Layers, AdminLayer{RID: l.RID, BitrateBps: l.BitrateBps, LastMediaAt: timeOrNil(l.LastMediaTime)})
	}
	if a.Drops == nil {
		a.Drops = map[string]uint64{}
	}
	a.LastPacketAt = timeOrNil(st.LastPacketTime)
	return a
}

// timeOrNil is t, or nil (left out of the JSON) when t is zero.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) handleAdminRemove(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	roomName, identity := r.PathValue("room"), r.PathValue("identity")
	p, err := s.dir.Remove(roomName, identity)
	if err == nil {
		// Its tokens, refreshed ones included, no longer join this room.
		s.removals.add(roomName, identity, time.Now())
		cutMedia(p) // its tracks leave every subscriber now (moderation.go)
	}
	switch {
	case errors.Is(err, rooms.ErrStream):
		writeJSONError(w, http.StatusConflict, "conflict", "this participant is an ingest stream: revoke its stream key or stop the encoder")
		return
	case err != nil:
		writeJSONError(w, http.StatusNotFound, "not_found", "no such participant")
		return
	}
	s.log.Info("participant removed by admin", "room", roomName, "participant", p.SID, "identity", identity)
	w.WriteHeader(http.StatusNoContent)
}

type adminMuteRequest struct {
	Muted *bool `json:"muted"`
}

func (s *Server) handleAdminMute(w http.ResponseWriter, r *http.Request, _ adminCaller) {
	roomName, identity, sid := r.PathValue("room"), r.PathValue("identity"), r.PathValue("sid")
	var req adminMuteRequest
	if !decodeJSONBody(w, r, &req) {
		return
	}
	if req.Muted == nil {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "muted is required")
		return
	}
	muted := *req.Muted
	err := s.dir.MuteTrack(roomName, identity, sid, muted)
	switch {
	case errors.Is(err, rooms.ErrNoParticipant):
		writeJSONError(w, http.StatusNotFound, "not_found", "no such participant")
	case errors.Is(err, rooms.ErrNoTrack):
		writeJSONError(w, http.StatusNotFound, "not_found", "no such track")
	case errors.Is(err, rooms.ErrStream):
		writeJSONError(w, http.StatusConflict, "conflict", "ingest stream tracks cannot be muted here")
	case err != nil:
		s.log.Error("admin mute failed", "room", roomName, "identity", identity, "track", sid, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal", "the media server could not mute the track")
	default:
		s.log.Info("track mute set by admin", "room", roomName, "identity", identity, "track", sid, "muted", muted)
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodeJSONBody reads a small JSON object, answering 400/413 itself.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		err = jsonEnd(dec) // one object, nothing after it (adminguard.go)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
			return false
		}
		writeJSONError(w, http.StatusBadRequest, "bad_request", "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, proto.ErrorBody{Code: code, Message: msg})
}
