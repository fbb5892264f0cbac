package signaling

import (
	"log/slog"
	"regexp"
	"sort"
	"time"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// Room and participant state lives in the Server under s.mu. The lock is
// only held for map updates and non-blocking enqueues; Media calls are
// always made without it, so an SFU callback can never deadlock with us.

// maxTracksPerParticipant bounds announced + published tracks.
const maxTracksPerParticipant = 32

var roomNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validRoomName(name string) bool { return roomNameRE.MatchString(name) }

type room struct {
	name         string
	participants map[string]*participant // by identity
}

type participant struct {
	sid      string
	identity string
	name     string
	room     string
	grants   auth.Grants
	joinedAt time.Time
	conn     *conn
	peer     MediaPeer
	log      *slog.Logger
	// chatConv is the room's chat conversation ("" without chat).
	chatConv string

	// stream marks an ingest stream (RTMP/WHIP): no connection (conn and
	// peer are nil), shown to viewers as a stream.
	stream bool

	// Guarded by Server.mu.
	tracks  map[string]*track // by client track id
	removed bool
	notice  string // shown with the participant, e.g. "audio unavailable: ..."
}

// track joins what the client announced in "publish" (source, mute) with
// what the SFU reported (sid). Only tracks with a sid are shown to others.
type track struct {
	trackID string
	kind    string
	source  string
	muted   bool
	sid     string
}

func (p *participant) viewLocked() proto.ParticipantView {
	v := proto.ParticipantView{SID: p.sid, Identity: p.identity, Name: p.name, Tracks: []proto.TrackView{}, Stream: p.stream, Notice: p.notice}
	for _, t := range p.tracks {
		if t.sid == "" {
			continue
		}
		v.Tracks = append(v.Tracks, proto.TrackView{SID: t.sid, TrackID: t.trackID, Kind: t.kind, Source: t.source, Muted: t.muted})
	}
	sort.Slice(v.Tracks, func(i, j int) bool { return v.Tracks[i].SID < v.Tracks[j].SID })
	return v
}

func (p *participant) trackBySIDLocked(sid string) *track {
	for _, t := range p.tracks {
		if t.sid == sid {
			return t
		}
	}
	return nil
}

// sortedParticipantsLocked returns the room's participants in join order.
func (r *room) sortedParticipantsLocked() []*participant {
	out := make([]*participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].joinedAt.Equal(out[j].joinedAt) {
			return out[i].joinedAt.Before(out[j].joinedAt)
		}
		return out[i].sid < out[j].sid
	})
	return out
}

// broadcastLocked queues msg for every participant of r except skip.
func (s *Server) broadcastLocked(r *room, skip *participant, msg []byte) {
	for _, p := range r.participants {
		if p != skip {
			p.conn.enqueue(msg)
		}
	}
}

// roomHasSpace is a cheap early check so a full room is refused before
// media resources are allocated; addParticipant checks again.
func (s *Server) roomHasSpace(roomName, identity string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomHasSpaceLocked(roomName, identity)
}

func (s *Server) roomHasSpaceLocked(roomName, identity string) bool {
	max := s.cfg.MaxParticipantsPerRoom
	r := s.rooms[roomName]
	if max == 0 || r == nil {
		return true
	}
	n := len(r.participants)
	if _, ok := r.participants[identity]; ok {
		n-- // the newcomer replaces this one
	}
	return n < max
}

// addParticipant puts p in its room, replacing an older connection with
// the same identity, sends p "joined" (answering request reqID) and tells
// the others. Everything happens under one lock so that every later room
// event reaches p after its "joined".
func (s *Server) addParticipant(p *participant, reqID string, ice []proto.ICEServerView) *proto.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return &proto.Error{Code: proto.CodeInternal, Message: "server is shutting down"}
	}
	if !s.roomHasSpaceLocked(p.room, p.identity) {
		return &proto.Error{Code: proto.CodeRoomFull, Message: "room is full"}
	}
	r := s.rooms[p.room]
	if r == nil {
		r = &room{name: p.room, participants: map[string]*participant{}}
		s.rooms[p.room] = r
		s.metrics.rooms.Set(float64(len(s.rooms)))
	}
	if old := r.participants[p.identity]; old != nil {
		s.detachLocked(old)
		old.conn.sendBye(proto.ByeReplaced)
	}
	others := r.sortedParticipantsLocked()
	r.participants[p.identity] = p
	s.metrics.participants.Inc()

	body := proto.JoinedBody{
		Protocol:       proto.ProtocolVersion,
		Room:           p.room,
		Participant:    p.viewLocked(),
		Participants:   make([]proto.ParticipantView, 0, len(others)),
		ICEServers:     ice,
		PingIntervalMs: s.cfg.PingInterval.Milliseconds(),
		PingTimeoutMs:  s.cfg.PingTimeout.Milliseconds(),
		Grants:         p.grants,
		ConversationID: p.chatConv,
	}
	for _, o := range others {
		body.Participants = append(body.Participants, o.viewLocked())
	}
	p.conn.enqueue(proto.Encode(proto.TypeJoined, reqID, body))
	s.broadcastLocked(r, p, proto.Encode(proto.TypeParticipantJoined, "", proto.ParticipantBody{Participant: p.viewLocked()}))
	return nil
}

// detach removes p from its room (once) and tells the others. It does not
// close p's media; the connection's teardown does that.
func (s *Server) detach(p *participant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detachLocked(p)
}

func (s *Server) detachLocked(p *participant) {
	if p.removed {
		return
	}
	p.removed = true
	r := s.rooms[p.room]
	if r == nil || r.participants[p.identity] != p {
		return
	}
	delete(r.participants, p.identity)
	s.metrics.participants.Dec()
	s.broadcastLocked(r, nil, proto.Encode(proto.TypeParticipantLeft, "", proto.ParticipantLeftBody{SID: p.sid, Identity: p.identity}))
	if len(r.participants) == 0 {
		delete(s.rooms, p.room)
		s.metrics.rooms.Set(float64(len(s.rooms)))
	}
}

// updatedLocked tells the whole room (p included, so it learns its track
// sids) that p changed.
func (s *Server) updatedLocked(p *participant) {
	if p.removed {
		return
	}
	if r := s.rooms[p.room]; r != nil {
		s.broadcastLocked(r, nil, proto.Encode(proto.TypeParticipantUpdated, "", proto.ParticipantBody{Participant: p.viewLocked()}))
	}
}

// announce records the client's "publish" list.
func (s *Server) announce(p *participant, list []proto.TrackAnnouncement) *proto.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	for _, a := range list {
		if p.tracks[a.TrackID] == nil {
			added++
		}
	}
	if len(p.tracks)+added > maxTracksPerParticipant {
		return proto.BadRequest("publish: at most %d tracks per participant", maxTracksPerParticipant)
	}
	changed := false
	for _, a := range list {
		t := p.tracks[a.TrackID]
		if t == nil {
			t = &track{trackID: a.TrackID}
			p.tracks[a.TrackID] = t
		}
		if t.sid != "" && (t.source != a.Source || t.muted != a.Muted) {
			changed = true
		}
		t.kind, t.source, t.muted = a.Kind, a.Source, a.Muted
	}
	if changed {
		s.updatedLocked(p)
	}
	return nil
}

// trackPublished attaches the SFU's track to the client's announcement.
func (s *Server) trackPublished(p *participant, info sfu.TrackInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.removed {
		return
	}
	t := p.tracks[info.ClientTrackID]
	if t == nil || info.ClientTrackID == "" {
		// Media without an announcement: guess the usual source so the
		// track still shows up.
		id := info.ClientTrackID
		if id == "" {
			id = info.SID
		}
		source := "camera"
		if info.Kind == "audio" {
			source = "microphone"
		}
		if len(p.tracks) >= maxTracksPerParticipant {
			return
		}
		t = &track{trackID: id, source: source}
		p.tracks[id] = t
	}
	t.kind = info.Kind
	t.sid = info.SID
	s.updatedLocked(p)
}

// trackUnpublished forgets a track the SFU ended.
func (s *Server) trackUnpublished(p *participant, info sfu.TrackInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := p.trackBySIDLocked(info.SID)
	if t == nil {
		return
	}
	delete(p.tracks, t.trackID)
	s.updatedLocked(p)
}

// forgetTrack handles the client's "unpublish"; it returns the SFU sid to
// unpublish ("" if the SFU never reported the track).
func (s *Server) forgetTrack(p *participant, trackID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := p.tracks[trackID]
	if t == nil {
		return "", false
	}
	delete(p.tracks, trackID)
	if t.sid != "" {
		s.updatedLocked(p)
	}
	return t.sid, true
}

// setMuted records a mute change by client track id and returns the sid.
func (s *Server) setMuted(p *participant, trackID string, muted bool) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := p.tracks[trackID]
	if t == nil {
		return "", false
	}
	if t.muted != muted {
		t.muted = muted
		if t.sid != "" {
			s.updatedLocked(p)
		}
	}
	return t.sid, true
}

// lookup finds a joined participant by room and identity.
func (s *Server) lookup(roomName, identity string) *participant {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[roomName]
	if r == nil {
		return nil
	}
	return r.participants[identity]
}
