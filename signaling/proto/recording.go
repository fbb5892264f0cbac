package proto

// Meeting recording (docs/protocol.md, Recording).

// Client message types: a moderator starts and stops the room's
// recording. Neither has a body.
const (
	TypeRecordingStart = "recording_start"
	TypeRecordingStop  = "recording_stop"
)

// TypeRecording is the server's room-wide recording state: sent to the
// whole room when a recording starts or stops, and in "joined".
const TypeRecording = "recording"

// RecordingBody is the body of "recording" and the "recording" field of
// "joined".
type RecordingBody struct {
	// Active: the room is being recorded now.
	Active bool `json:"active"`
	// ID is the recording's id (the admin API's), also once stopped.
	ID string `json:"id,omitempty"`
	// By is who started it (active) or stopped it (a moderator; absent
	// when a limit or the server ended it).
	By *IdentityView `json:"by,omitempty"`
	// StartedAt is when it started, Unix milliseconds (server clock).
	StartedAt int64 `json:"startedAt,omitempty"`
	// Reason says why it stopped: "stopped", "everyone left", "size limit reached",
	// "recordings disk budget spent", "server shutting down", "write error".
	Reason string `json:"reason,omitempty"`
}
