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
	// Moderator marks a moderator of the room.
	Moderator bool `json:"moderator,omitempty"`
	// HandRaised: the participant raised its hand, at HandRaisedAt (Unix
	// milliseconds, the server's clock), so clients can order hands.
	HandRaised   bool  `json:"handRaised,omitempty"`
	HandRaisedAt int64 `json:"handRaisedAt,omitempty"`
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
	// Settings are the room's moderation settings (call sessions).
	Settings *RoomSettingsView `json:"settings,omitempty"`
	// Recording is the room's recording state (call sessions, when
	// recording is enabled on the server).
	Recording *RecordingBody `json:"recording,omitempty"`
	// Restream is the room's live restream state (call sessions, when
	// the server can restream).
	Restream *RestreamBody `json:"restream,omitempty"`
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

// SpeakersBody is the body of "speakers": the room's active speaker
// (identity, "" when there is none) and who is speaking now, the active
// speaker first, with a loudness from 0 to 1.
type SpeakersBody struct {
	Active   string        `json:"active"`
	Speakers []SpeakerView `json:"speakers"`
}

// SpeakerView is one entry of SpeakersBody.Speakers.
type SpeakerView struct {
	Identity string  `json:"identity"`
	Level    float64 `json:"level"`
}

// ActiveLayersBody is the body of "active_layers" (dynacast): the
// publisher should send these simulcast layers (rids) of its track
// trackId (the MediaStreamTrack id it published) and pause the others.
type ActiveLayersBody struct {
	TrackID  string   `json:"trackId"`
	TrackSID string   `json:"trackSid"`
	RIDs     []string `json:"rids"`
}

// ConnectionQualityBody is the body of "connection_quality": every
// participant's connection-quality level ("excellent", "good", "poor",
// "lost"), sent to the whole room when one changes.
type ConnectionQualityBody struct {
	Participants []QualityView `json:"participants"`
}

// QualityView is one participant's level in ConnectionQualityBody.
type QualityView struct {
	Identity string `json:"identity"`
	Quality  string `json:"quality"`
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
	// URL: with code wrong_node, the base URL of the node that hosts the
	// room (cluster mode); the client joins there instead.
	URL string `json:"url,omitempty"`
}
