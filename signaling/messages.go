package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ProtocolVersion is the version of docs/protocol.md this server speaks.
const ProtocolVersion = 1

// Client message types.
const (
	TypeJoin       = "join"
	TypePublish    = "publish"
	TypeUnpublish  = "unpublish"
	TypeOffer      = "offer"
	TypeAnswer     = "answer"
	TypeCandidate  = "candidate"
	TypeICERestart = "ice_restart"
	TypeMute       = "mute"
	TypePong       = "pong"
	TypeLeave      = "leave"
)

// Server message types (offer, answer and candidate are shared).
const (
	TypeJoined             = "joined"
	TypePublished          = "published"
	TypeParticipantJoined  = "participant_joined"
	TypeParticipantUpdated = "participant_updated"
	TypeParticipantLeft    = "participant_left"
	TypePing               = "ping"
	TypeMuted              = "muted"
	TypeToken              = "token"
	TypeBye                = "bye"
	TypeError              = "error"
)

// Error codes sent in "error" messages.
const (
	CodeBadRequest        = "bad_request"
	CodeUnknownType       = "unknown_type"
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeProtocolVersion   = "protocol_version"
	CodeNotJoined         = "not_joined"
	CodeTooLarge          = "too_large"
	CodeRateLimited       = "rate_limited"
	CodeNotFound          = "not_found"
	CodeNegotiationFailed = "negotiation_failed"
	CodeRoomFull          = "room_full"
	CodeInternal          = "internal"
)

// Bye reasons.
const (
	ByeShutdown = "shutdown"
	ByeRemoved  = "removed"
	ByeReplaced = "replaced"
	ByeTimeout  = "timeout"
	ByeLeft     = "left"
)

// Field limits. They keep one message's worth of state small; the frame
// size limit bounds the rest.
const (
	maxIDBytes       = 64
	maxTokenBytes    = 8192
	maxNameRunes     = 64
	maxTrackIDBytes  = 128
	maxTracksPerMsg  = 16
	maxCandidateSize = 2048
)

// ProtoError is a protocol-level failure that is reported to the client
// as an "error" message with Code.
type ProtoError struct {
	Code    string
	Message string
}

func (e *ProtoError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) *ProtoError {
	return &ProtoError{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// envelope is the outer shape shared by every message.
type envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Re   string          `json:"re,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Request is a decoded, validated client message. Body holds a pointer to
// the type's body struct (nil for types without a body).
type Request struct {
	Type string
	ID   string
	Body any
}

// JoinBody is the body of "join".
type JoinBody struct {
	Token    string `json:"token"`
	Protocol int    `json:"protocol"`
	Name     string `json:"name,omitempty"`
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

// TrackRef is the body of "unpublish".
type TrackRef struct {
	TrackID string `json:"trackId"`
}

// SDPBody is the body of "offer" and "answer".
type SDPBody struct {
	SDP        string `json:"sdp"`
	ICERestart bool   `json:"iceRestart,omitempty"`
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

// MuteBody is the body of "mute" and of the server's "muted".
type MuteBody struct {
	TrackID string `json:"trackId"`
	Muted   *bool  `json:"muted"`
}

// PingBody is the body of "ping" and "pong".
type PingBody struct {
	TS int64 `json:"ts"`
}

// sourceKinds maps each allowed source to the only kind it can carry.
var sourceKinds = map[string]string{
	"camera":       "video",
	"microphone":   "audio",
	"screen":       "video",
	"screen_audio": "audio",
}

// DecodeRequest parses and validates one client frame. Every failure is
// a *ProtoError; when the envelope parsed, the returned Request still
// carries Type and ID so the error can answer the right request.
func DecodeRequest(frame []byte) (Request, *ProtoError) {
	if !utf8.Valid(frame) {
		return Request{}, badRequest("message is not valid UTF-8")
	}
	var env envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return Request{}, badRequest("malformed JSON: %v", err)
	}
	req := Request{Type: env.Type, ID: env.ID}
	if len(env.ID) > maxIDBytes {
		req.ID = ""
		return req, badRequest("id longer than %d bytes", maxIDBytes)
	}
	if env.Type == "" {
		return req, badRequest("missing type")
	}
	if env.Re != "" {
		return req, badRequest("re is only sent by the server")
	}
	var body any
	switch env.Type {
	case TypeJoin:
		body = &JoinBody{}
	case TypePublish:
		body = &PublishBody{}
	case TypeUnpublish:
		body = &TrackRef{}
	case TypeOffer, TypeAnswer:
		body = &SDPBody{}
	case TypeCandidate:
		body = &CandidateBody{}
	case TypeMute:
		body = &MuteBody{}
	case TypePong:
		body = &PingBody{}
	case TypeICERestart, TypeLeave:
		// No body; anything sent is ignored for forward compatibility.
		return req, nil
	default:
		if body = newChatBody(env.Type); body != nil {
			break
		}
		return req, &ProtoError{Code: CodeUnknownType, Message: fmt.Sprintf("unknown message type %q", truncate(env.Type, 32))}
	}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || data[0] != '{' {
		return req, badRequest("%s: data must be an object", env.Type)
	}
	if err := json.Unmarshal(data, body); err != nil {
		return req, badRequest("%s: %v", env.Type, err)
	}
	if perr := validateBody(env.Type, body); perr != nil {
		return req, perr
	}
	req.Body = body
	return req, nil
}

func validateBody(typ string, body any) *ProtoError {
	switch b := body.(type) {
	case *JoinBody:
		// A join without a usable token is an authentication failure, not
		// a malformed request: the connection is refused and closed.
		if b.Token == "" {
			return &ProtoError{Code: CodeUnauthorized, Message: "join: token is required"}
		}
		if len(b.Token) > maxTokenBytes {
			return &ProtoError{Code: CodeUnauthorized, Message: "join: token too long"}
		}
		if utf8.RuneCountInString(b.Name) > maxNameRunes {
			return badRequest("join: name longer than %d characters", maxNameRunes)
		}
	case *PublishBody:
		if len(b.Tracks) == 0 || len(b.Tracks) > maxTracksPerMsg {
			return badRequest("publish: tracks must list 1 to %d tracks", maxTracksPerMsg)
		}
		seen := make(map[string]bool, len(b.Tracks))
		for _, t := range b.Tracks {
			if err := validTrackID(t.TrackID); err != nil {
				return badRequest("publish: %s", err)
			}
			if seen[t.TrackID] {
				return badRequest("publish: track %q listed twice", t.TrackID)
			}
			seen[t.TrackID] = true
			kind, ok := sourceKinds[t.Source]
			if !ok {
				return badRequest("publish: source must be camera, microphone, screen or screen_audio")
			}
			if t.Kind != kind {
				return badRequest("publish: source %s needs kind %s", t.Source, kind)
			}
		}
	case *TrackRef:
		if err := validTrackID(b.TrackID); err != nil {
			return badRequest("%s: %s", typ, err)
		}
	case *SDPBody:
		if b.SDP == "" {
			return badRequest("%s: sdp is required", typ)
		}
	case *CandidateBody:
		if b.Target != "publisher" && b.Target != "subscriber" {
			return badRequest("candidate: target must be publisher or subscriber")
		}
		if b.Candidate == nil {
			return badRequest("candidate: candidate is required")
		}
		if len(b.Candidate.Candidate) > maxCandidateSize {
			return badRequest("candidate: candidate too long")
		}
	case *MuteBody:
		if err := validTrackID(b.TrackID); err != nil {
			return badRequest("mute: %s", err)
		}
		if b.Muted == nil {
			return badRequest("mute: muted is required")
		}
	default:
		return validateChatBody(typ, body)
	}
	return nil
}

func validTrackID(id string) error {
	if id == "" {
		return fmt.Errorf("trackId is required")
	}
	if len(id) > maxTrackIDBytes {
		return fmt.Errorf("trackId longer than %d bytes", maxTrackIDBytes)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// encode renders one server message. Marshal only fails on programmer
// error (unsupported types), so it panics rather than sending garbage.
func encode(typ, re string, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("signaling: encode %s: %v", typ, err))
	}
	out, err := json.Marshal(envelope{Type: typ, Re: re, Data: raw})
	if err != nil {
		panic(fmt.Sprintf("signaling: encode %s envelope: %v", typ, err))
	}
	return out
}
