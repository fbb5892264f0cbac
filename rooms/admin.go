package rooms

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// What the admin API reads and does.

// RoomSummary is one room in the admin list.
type RoomSummary struct {
	Name         string
	Participants int
}

// Rooms lists the rooms allowed shows, sorted by name.
func (d *Directory) Rooms(allowed func(room string) bool) []RoomSummary {
	d.mu.Lock()
	out := make([]RoomSummary, 0, len(d.rooms))
	for name, r := range d.rooms {
		if allowed(name) {
			out = append(out, RoomSummary{Name: name, Participants: len(r.participants)})
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b RoomSummary) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ParticipantInfo is a participant as the admin API shows it.
type ParticipantInfo struct {
	View     proto.ParticipantView
	JoinedAt time.Time
	Grants   auth.Grants
}

// Participants lists a room's participants in join order; ok is false
// for a room without participants.
func (d *Directory) Participants(roomName string) (out []ParticipantInfo, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.rooms[roomName]
	if r == nil {
		return nil, false
	}
	for _, p := range r.sortedLocked() {
		out = append(out, ParticipantInfo{View: p.viewLocked(), JoinedAt: p.JoinedAt, Grants: p.Grants})
	}
	return out, true
}

// Remove takes a participant out of its room and says bye "removed"
// (ErrNoParticipant, or ErrStream for an ingest stream).
func (d *Directory) Remove(roomName, identity string) (*Participant, error) {
	d.mu.Lock()
	var p *Participant
	if r := d.rooms[roomName]; r != nil {
		p = r.participants[identity]
	}
	switch {
	case p == nil:
		d.mu.Unlock()
		return nil, fmt.Errorf("remove %s from %s: %w", identity, roomName, ErrNoParticipant)
	case p.stream:
		d.mu.Unlock()
		return p, fmt.Errorf("remove %s from %s: %w", identity, roomName, ErrStream)
	}
	dl := &delivery{r: d.rooms[roomName]}
	d.detachLocked(dl, p)
	dl.bye(p, proto.ByeRemoved)
	d.release(dl)
	return p, nil
}

// MuteTrack mutes or unmutes a participant's track in the SFU, tells the
// participant ("muted") and shows the change to the room when the state
// changed. The SFU is
// called without the directory's lock.
func (d *Directory) MuteTrack(roomName, identity, sid string, muted bool) error {
	p := d.Lookup(roomName, identity)
	if p == nil {
		return fmt.Errorf("mute in %s: %w", roomName, ErrNoParticipant)
	}
	d.mu.Lock()
	found := p.trackBySIDLocked(sid) != nil
	d.mu.Unlock()
	if !found {
		return fmt.Errorf("mute %s: %w", sid, ErrNoTrack)
	}
	if p.Media == nil {
		return fmt.Errorf("mute %s: %w", sid, ErrStream)
	}
	if err := p.Media.SetTrackMuted(sid, muted); err != nil {
		return fmt.Errorf("mute %s in the SFU: %w", sid, err)
	}
	d.mu.Lock()
	var dl *delivery
	// A track already in this state is not announced again: a moderator's
	// mute and the re-mute of a freshly published microphone may both
	// reach the same track, and the participant should hear it once.
	if t := p.trackBySIDLocked(sid); t != nil && !p.removed && t.muted != muted {
		t.muted = muted
		if upd := d.updatedLocked(p); upd != nil {
			dl = &delivery{r: upd.r}
			dl.to(p, proto.Encode(proto.TypeMuted, "", proto.MutedBody{TrackID: t.trackID, Muted: muted}))
			dl.acts = append(dl.acts, upd.acts...)
		}
	}
	d.release(dl)
	return nil
}

// ByeAll tells every participant's connection (not ingest streams) to go
// with reason, room by room; each leaves when its connection closes, as
// usual. It returns how many were told. A draining cluster node uses it
// to move its calls to another node.
func (d *Directory) ByeAll(reason string) int {
	d.mu.Lock()
	names := make([]string, 0, len(d.rooms))
	for name := range d.rooms {
		names = append(names, name)
	}
	d.mu.Unlock()
	n := 0
	for _, name := range names {
		n += d.ByeRoom(name, reason)
	}
	return n
}

// ByeRoom sends bye with reason to every participant of one room but
// ingest streams, and returns how many it told (cluster mode: the room
// moved to another node and they must follow it).
func (d *Directory) ByeRoom(name, reason string) int {
	d.mu.Lock()
	r := d.rooms[name]
	if r == nil {
		d.mu.Unlock()
		return 0
	}
	n := 0
	dl := &delivery{r: r}
	for _, p := range r.participants {
		if !p.stream {
			dl.bye(p, reason)
			n++
		}
	}
	d.release(dl)
	return n
}
