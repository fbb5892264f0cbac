package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
)

// Media is what signaling needs from the SFU. *sfu.SFU satisfies it
// through SFUMedia; tests use a fake.
type Media interface {
	// Join starts a participant's media session. opts.Events receives the
	// SFU's callbacks; signaling's implementation only queues them.
	Join(room, participantID string, opts sfu.JoinOptions) (MediaPeer, error)
	// RoomStats returns per-track counters for the admin API.
	RoomStats(room string) []sfu.TrackStats
}

// MediaPeer is one participant's media session.
type MediaPeer interface {
	HandleOffer(offer webrtc.SessionDescription) (webrtc.SessionDescription, error)
	HandleAnswer(answer webrtc.SessionDescription) error
	AddICECandidate(target sfu.Target, c webrtc.ICECandidateInit) error
	RestartICE() error
	Unpublish(trackSID string) error
	SetTrackMuted(trackSID string, muted bool) error
	// SetView reports how the subscriber shows a video track (rendered
	// size in device pixels, visible or not); the SFU chooses the layer
	// from it and the subscriber's estimated bandwidth.
	SetView(trackSID string, width, height int, visible bool) error
	// SetScreenShare marks a published track as a screen share, which
	// subscribers' layer choice serves before cameras.
	SetScreenShare(trackSID string) error
	Close() error
}

// ICEServerProvider hands each client the STUN/TURN servers (with
// credentials) to put in its PeerConnection configuration. The embedded
// TURN server satisfies it without either package importing the other.
type ICEServerProvider interface {
	ICEServers(identity string) []webrtc.ICEServer
}
