package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// Ingest streams (OBS over RTMP or WHIP) appear in rooms as participants
// without a connection. These methods let the ingest service tell the room
// directory about them; they only update state and queue messages, so they
// never block the caller.

// ErrIdentityInRoom refuses a stream whose identity is already present.
var ErrIdentityInRoom = errors.New("identity already in the room")

// AddStream adds an ingest stream as a participant of room.
func (s *Server) AddStream(roomName, participantID, identity, name string) error {
	if !validRoomName(roomName) {
		return fmt.Errorf("stream room %q: invalid room name", roomName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return errors.New("server is shutting down")
	}
	if !s.roomHasSpaceLocked(roomName, "") {
		return fmt.Errorf("room %s is full", roomName)
	}
	r := s.rooms[roomName]
	if r == nil {
		r = &room{name: roomName, participants: map[string]*participant{}}
		s.rooms[roomName] = r
		s.metrics.rooms.Set(float64(len(s.rooms)))
	}
	if _, taken := r.participants[identity]; taken {
		return fmt.Errorf("stream %s: %w", identity, ErrIdentityInRoom)
	}
	p := &participant{sid: participantID, identity: identity, name: name, room: roomName, stream: true,
		joinedAt: time.Now(), log: s.log.With("room", roomName, "participant", participantID, "stream", true),
		tracks: map[string]*track{}}
	r.participants[identity] = p
	s.metrics.participants.Inc()
	s.broadcastLocked(r, p, proto.Encode(proto.TypeParticipantJoined, "", proto.ParticipantBody{Participant: p.viewLocked()}))
	return nil
}

func (s *Server) streamLocked(roomName, participantID string) *participant {
	r := s.rooms[roomName]
	if r == nil {
		return nil
	}
	for _, p := range r.participants {
		if p.sid == participantID && p.stream {
			return p
		}
	}
	return nil
}

// StreamTrackPublished shows a stream's track to the room.
func (s *Server) StreamTrackPublished(roomName, participantID string, t sfu.TrackInfo, source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.streamLocked(roomName, participantID)
	if p == nil {
		return
	}
	p.tracks[t.ClientTrackID] = &track{trackID: t.ClientTrackID, kind: t.Kind, source: source, sid: t.SID}
	s.updatedLocked(p)
}

// StreamTrackUnpublished removes a stream's track.
func (s *Server) StreamTrackUnpublished(roomName, participantID string, t sfu.TrackInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.streamLocked(roomName, participantID)
	if p == nil {
		return
	}
	delete(p.tracks, t.ClientTrackID)
	s.updatedLocked(p)
}

// StreamAudioUnavailable shows (or clears, with "") why a stream has no
// audio.
func (s *Server) StreamAudioUnavailable(roomName, participantID, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.streamLocked(roomName, participantID)
	if p == nil {
		return
	}
	p.notice = ""
	if reason != "" {
		p.notice = "audio unavailable: " + reason
	}
	s.updatedLocked(p)
}

// RemoveStream takes a stream out of its room.
func (s *Server) RemoveStream(roomName, participantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.streamLocked(roomName, participantID); p != nil {
		s.detachLocked(p)
	}
}
