package rooms

import (
	"fmt"
	"time"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

// Ingest streams (OBS over RTMP or WHIP) appear in rooms as participants
// without a connection. These methods make *Directory an ingest.Directory;
// they only update state and queue messages, so they never block.

// AddStream adds an ingest stream as a participant of room.
func (d *Directory) AddStream(roomName, participantID, identity, name string) error {
	if !ValidName(roomName) {
		return fmt.Errorf("stream room %q: invalid room name", roomName)
	}
	d.mu.Lock()
	if !d.hasSpaceLocked(roomName, "") {
		d.mu.Unlock()
		return fmt.Errorf("stream room %s: %w", roomName, ErrRoomFull)
	}
	r := d.roomLocked(roomName)
	if _, taken := r.participants[identity]; taken {
		d.mu.Unlock()
		return fmt.Errorf("stream %s: %w", identity, ErrIdentityInRoom)
	}
	p := &Participant{SID: participantID, Identity: identity, Name: name, Room: roomName, stream: true,
		JoinedAt: time.Now(), tracks: map[string]*track{}}
	r.participants[identity] = p
	d.count++
	dl := &delivery{r: r}
	dl.broadcast(p, proto.Encode(proto.TypeParticipantJoined, "", proto.ParticipantBody{Participant: p.viewLocked()}))
	d.release(dl)
	d.log.Info("stream joined", "room", roomName, "participant", participantID, "identity", identity)
	return nil
}

func (d *Directory) streamLocked(roomName, participantID string) *Participant {
	r := d.rooms[roomName]
	if r == nil {
		return nil
	}
	for _, p := range r.participants {
		if p.SID == participantID && p.stream {
			return p
		}
	}
	return nil
}

// StreamTrackPublished shows a stream's track to the room.
func (d *Directory) StreamTrackPublished(roomName, participantID string, t sfu.TrackInfo, source string) {
	d.mu.Lock()
	var dl *delivery
	if p := d.streamLocked(roomName, participantID); p != nil {
		p.tracks[t.ClientTrackID] = &track{trackID: t.ClientTrackID, kind: t.Kind, source: source, sid: t.SID}
		dl = d.updatedLocked(p)
	}
	d.release(dl)
}

// StreamTrackUnpublished removes a stream's track.
func (d *Directory) StreamTrackUnpublished(roomName, participantID string, t sfu.TrackInfo) {
	d.mu.Lock()
	var dl *delivery
	if p := d.streamLocked(roomName, participantID); p != nil {
		delete(p.tracks, t.ClientTrackID)
		dl = d.updatedLocked(p)
	}
	d.release(dl)
}

// StreamAudioUnavailable shows (or clears, with "") why a stream has no
// audio.
func (d *Directory) StreamAudioUnavailable(roomName, participantID, reason string) {
	d.mu.Lock()
	var dl *delivery
	if p := d.streamLocked(roomName, participantID); p != nil {
		p.notice = ""
		if reason != "" {
			p.notice = "audio unavailable: " + reason
		}
		dl = d.updatedLocked(p)
	}
	d.release(dl)
}

// RemoveStream takes a stream out of its room.
func (d *Directory) RemoveStream(roomName, participantID string) {
	d.mu.Lock()
	var dl *delivery
	if p := d.streamLocked(roomName, participantID); p != nil {
		dl = &delivery{r: d.rooms[roomName]}
		d.detachLocked(dl, p)
	}
	d.release(dl)
}
