package proto

import "github.com/parleyhq/parley/signaling/auth"

// Bodies of the server's call messages.

// TrackView is a published track as other participants see it.
type TrackView struct {
	SID     string `json:"sid"`
	TrackID string `json:"trackId"`
	Kind    string `json:"kind"`
	Source  string `json:"source"`
	Muted   bool   `json:"muted"`
}

// ParticipantView is a participant as the room sees it.
type ParticipantView struct {
	SID      string      `json:"sid"`
	Identity string      `json:"identity"`
	Name     string      `json:"name"`
	Tracks   []TrackView `json:"tracks"`
	// Stream marks an ingest stream (OBS over RTMP or WHIP).
	Stream bool `json:"stream,omitempty"`
	// Notice is a problem viewers should see, e.g. a stream's audio is
	// unavailable.
	Notice string `json:"notice,omitempty"`
}

// ICEServerView is one RTCIceServer for the browser.
type ICEServerView struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// JoinedBody is the body of "joined".
type JoinedBody struct {
	Protocol       int               `json:"protocol"`
	Room           string            `json:"room"`
	Participant    ParticipantView   `json:"participant"`
	Participants   []ParticipantView `json:"participants"`
	ICEServers     []ICEServerView   `json:"iceServers"`
	PingIntervalMs int64             `json:"pingIntervalMs"`
	PingTimeoutMs  int64             `json:"pingTimeoutMs"`
	Grants         auth.Grants       `json:"grants"`
	// ConversationID is the room's chat conversation, when chat is on
	// and the token has the chat grant.
	ConversationID string `json:"conversationId,omitempty"`
}

// ParticipantBody is the body of "participant_joined" and
// "participant_updated".
type ParticipantBody struct {
	Participant ParticipantView `json:"participant"`
}

// ParticipantLeftBody is the body of "participant_left".
type ParticipantLeftBody struct {
	SID      string `json:"sid"`
	Identity string `json:"identity"`
}

// MutedBody is the body of the server's "muted".
type MutedBody struct {
	TrackID string `json:"trackId"`
	Muted   bool   `json:"muted"`
}

// TokenBody is the body of "token" (and of the token endpoints' replies).
type TokenBody struct {
	Token string `json:"token"`
}

// ByeBody is the body of "bye".
type ByeBody struct {
	Reason string `json:"reason"`
}

// ErrorBody is the body of "error" (and of the HTTP APIs' errors).
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
