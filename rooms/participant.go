package rooms

import (
	"cmp"
	"slices"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// Member is how the directory reaches a participant's connection. Both
// methods are called with the room's delivery lock held and must not
// block or call back into the Directory: queue and return.
type Member interface {
	// Send queues one encoded server message.
	Send(msg []byte)
	// Bye tells the participant why it leaves (proto.Bye*), then closes.
	Bye(reason string)
}

// TrackMuter is the part of a participant's media session the admin
// mute needs; nil for ingest streams, whose tracks cannot be muted here.
type TrackMuter interface {
	SetTrackMuted(trackSID string, muted bool) error
}

// Participant is one member of a room. The exported fields are set
// before Join and never change; the rest belongs to the Directory.
type Participant struct {
	SID      string
	Identity string
	Name     string
	Room     string
	Grants   auth.Grants
	JoinedAt time.Time
	// ConversationID is the room's chat conversation ("" without chat).
	ConversationID string
	// Member reaches the participant's connection; nil for a stream.
	Member Member
	// Media is used by the admin mute; nil for a stream.
	Media TrackMuter

	// Moderator shows the participant as a moderator of the room. Set it
	// before Join; afterwards it is guarded by Directory.mu and changed
	// through SetModerator.
	Moderator bool

	// Guarded by Directory.mu.
	stream  bool              // an ingest stream (RTMP/WHIP): no connection
	tracks  map[string]*track // by client track id
	removed bool
	notice  string // shown with the participant, e.g. "audio unavailable: ..."
	// handRaisedAt is when the hand went up; zero while it is down.
	handRaisedAt time.Time
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

func (p *Participant) viewLocked() proto.ParticipantView {
	v := proto.ParticipantView{SID: p.SID, Identity: p.Identity, Name: p.Name, Tracks: []proto.TrackView{}, Stream: p.stream, Notice: p.notice, Moderator: p.Moderator}
	if !p.handRaisedAt.IsZero() {
		v.HandRaised, v.HandRaisedAt = true, p.handRaisedAt.UnixMilli()
	}
	for _, t := range p.tracks {
		if t.sid == "" {
			continue
		}
		v.Tracks = append(v.Tracks, proto.TrackView{SID: t.sid, TrackID: t.trackID, Kind: t.kind, Source: t.source, Muted: t.muted})
	}
	slices.SortFunc(v.Tracks, func(a, b proto.TrackView) int { return cmp.Compare(a.SID, b.SID) })
	return v
}

func (p *Participant) trackBySIDLocked(sid string) *track {
	for _, t := range p.tracks {
		if t.sid == sid {
			return t
		}
	}
	return nil
}
