package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/auth"
)

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

type participantBody struct {
	Participant ParticipantView `json:"participant"`
}

type participantLeftBody struct {
	SID      string `json:"sid"`
	Identity string `json:"identity"`
}

type mutedBody struct {
	TrackID string `json:"trackId"`
	Muted   bool   `json:"muted"`
}

type tokenBody struct {
	Token string `json:"token"`
}

type byeBody struct {
	Reason string `json:"reason"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func iceServerViews(in []webrtc.ICEServer) []ICEServerView {
	out := make([]ICEServerView, 0, len(in))
	for _, s := range in {
		v := ICEServerView{URLs: s.URLs, Username: s.Username}
		if cred, ok := s.Credential.(string); ok {
			v.Credential = cred
		}
		out = append(out, v)
	}
	return out
}
