package proto

import (
	"fmt"
	"unicode/utf8"
)

// Field limits of the call messages. They keep one message's worth of
// state small; the frame size limit bounds the rest.
const (
	MaxTokenBytes    = 8192
	MaxNameRunes     = 64
	MaxTrackIDBytes  = 128
	MaxTracksPerMsg  = 16
	MaxCandidateSize = 2048
)

// JoinBody is the body of "join".
type JoinBody struct {
	Token    string `json:"token"`
	Protocol int    `json:"protocol"`
	Name     string `json:"name,omitempty"`
}

// Validate refuses a join without a usable token as an authentication
// failure, not a malformed request: the connection is then closed.
func (b *JoinBody) Validate(string) *Error {
	if b.Token == "" {
		return &Error{Code: CodeUnauthorized, Message: "join: token is required"}
	}
	if len(b.Token) > MaxTokenBytes {
		return &Error{Code: CodeUnauthorized, Message: "join: token too long"}
	}
	if utf8.RuneCountInString(b.Name) > MaxNameRunes {
		return BadRequest("join: name longer than %d characters", MaxNameRunes)
	}
	return nil
}

// TrackAnnouncement is one entry of "publish".
type TrackAnnouncement struct {
	TrackID string `json:"trackId"`
	Kind    string `json:"kind"`
	Source  string `json:"source"`
	Muted   bool   `json:"muted"`
}

// PublishBody is the body of "publish" and "published".
type PublishBody struct {
	Tracks []TrackAnnouncement `json:"tracks"`
}

// sourceKinds maps each allowed source to the only kind it can carry.
//
//nolint:gochecknoglobals // a read-only table
var sourceKinds = map[string]string{
	"camera":       "video",
	"microphone":   "audio",
	"screen":       "video",
	"screen_audio": "audio",
}

// Validate checks the list's size, unique track ids and that each
// source carries its kind.
func (b *PublishBody) Validate(string) *Error {
	if len(b.Tracks) == 0 || len(b.Tracks) > MaxTracksPerMsg {
		return BadRequest("publish: tracks must list 1 to %d tracks", MaxTracksPerMsg)
	}
	seen := make(map[string]bool, len(b.Tracks))
	for _, t := range b.Tracks {
		if err := validTrackID(t.TrackID); err != nil {
			return BadRequest("publish: %s", err)
		}
		if seen[t.TrackID] {
			return BadRequest("publish: track %q listed twice", t.TrackID)
		}
		seen[t.TrackID] = true
		kind, ok := sourceKinds[t.Source]
		if !ok {
			return BadRequest("publish: source must be camera, microphone, screen or screen_audio")
		}
		if t.Kind != kind {
			return BadRequest("publish: source %s needs kind %s", t.Source, kind)
		}
	}
	return nil
}

// TrackRef is the body of "unpublish".
type TrackRef struct {
	TrackID string `json:"trackId"`
}

// Validate checks the track id.
func (b *TrackRef) Validate(typ string) *Error {
	if err := validTrackID(b.TrackID); err != nil {
		return BadRequest("%s: %s", typ, err)
	}
	return nil
}

// SDPBody is the body of "offer" and "answer".
type SDPBody struct {
	SDP        string `json:"sdp"`
	ICERestart bool   `json:"iceRestart,omitempty"`
}

// Validate requires an SDP.
func (b *SDPBody) Validate(typ string) *Error {
	if b.SDP == "" {
		return BadRequest("%s: sdp is required", typ)
	}
	return nil
}

// CandidateInit mirrors the browser's RTCIceCandidateInit.
type CandidateInit struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// CandidateBody is the body of "candidate" in both directions.
type CandidateBody struct {
	Target    string         `json:"target"`
	Candidate *CandidateInit `json:"candidate"`
}

// Validate checks the target and bounds the candidate.
func (b *CandidateBody) Validate(string) *Error {
	if b.Target != "publisher" && b.Target != "subscriber" {
		return BadRequest("candidate: target must be publisher or subscriber")
	}
	if b.Candidate == nil {
		return BadRequest("candidate: candidate is required")
	}
	if len(b.Candidate.Candidate) > MaxCandidateSize {
		return BadRequest("candidate: candidate too long")
	}
	return nil
}

// MuteBody is the body of "mute".
type MuteBody struct {
	TrackID string `json:"trackId"`
	Muted   *bool  `json:"muted"`
}

// Validate requires a track id and an explicit muted.
func (b *MuteBody) Validate(string) *Error {
	if err := validTrackID(b.TrackID); err != nil {
		return BadRequest("mute: %s", err)
	}
	if b.Muted == nil {
		return BadRequest("mute: muted is required")
	}
	return nil
}

// MaxViewSize bounds video_view's width and height (pixels).
const MaxViewSize = 16384

// VideoViewBody is the body of "video_view": how large the subscriber
// shows a remote video track, in device pixels, and whether it is seen.
type VideoViewBody struct {
	TrackSID string `json:"trackSid"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Visible  *bool  `json:"visible"`
}

// Validate requires a track sid, sizes within 0..MaxViewSize and an
// explicit visible.
func (b *VideoViewBody) Validate(string) *Error {
	if b.TrackSID == "" || len(b.TrackSID) > MaxTrackIDBytes {
		return BadRequest("video_view: trackSid is required, at most %d bytes", MaxTrackIDBytes)
	}
	if b.Width < 0 || b.Height < 0 || b.Width > MaxViewSize || b.Height > MaxViewSize {
		return BadRequest("video_view: width and height must be 0..%d", MaxViewSize)
	}
	if b.Visible == nil {
		return BadRequest("video_view: visible is required")
	}
	return nil
}

// PingBody is the body of "ping" and "pong".
type PingBody struct {
	TS int64 `json:"ts"`
}

// Validate accepts any timestamp: the pong only proves liveness.
func (*PingBody) Validate(string) *Error { return nil }

func validTrackID(id string) error {
	if id == "" {
		return fmt.Errorf("trackId is required")
	}
	if len(id) > MaxTrackIDBytes {
		return fmt.Errorf("trackId longer than %d bytes", MaxTrackIDBytes)
	}
	return nil
}
