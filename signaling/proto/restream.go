package proto

// Live restream of the meeting to an RTMP URL (docs/protocol.md,
// Restream).

// Client message types: a moderator starts (with the URL) and stops the
// room's restream.
const (
	TypeRestreamStart = "restream_start"
	TypeRestreamStop  = "restream_stop"
)

// TypeRestream is the server's room-wide restream state: sent to the
// whole room when a restream starts or stops, and in "joined".
const TypeRestream = "restream"

// MaxRestreamURL bounds restream_start's url (recording.MaxRestreamURL).
const MaxRestreamURL = 1024

// RestreamStartBody is restream_start's body.
type RestreamStartBody struct {
	// URL is the RTMP server's URL with the stream key, rtmp:// or
	// rtmps://. It is a secret: the server never sends it to anyone.
	URL string `json:"url"`
}

// Validate checks the URL's presence and length; the server checks the
// rest (scheme, host, path).
func (b *RestreamStartBody) Validate(typ string) *Error {
	if b.URL == "" || len(b.URL) > MaxRestreamURL {
		return BadRequest("%s: url is required, at most %d characters", typ, MaxRestreamURL)
	}
	return nil
}

// RestreamBody is the body of "restream" and the "restream" field of
// "joined". It never carries the URL.
type RestreamBody struct {
	// Active: the meeting is streamed live now ("Live").
	Active bool `json:"active"`
	// Since is when it started, Unix milliseconds (server clock).
	Since int64 `json:"since,omitempty"`
	// By is who started it (active) or stopped it (a moderator or the
	// admin API; absent when it ended by itself).
	By *IdentityView `json:"by,omitempty"`
	// Reason says why it stopped: "stopped", "everyone left", "the
	// meeting ended", "the RTMP server could not be reached", "ffmpeg is
	// not installed", "server shutting down".
	Reason string `json:"reason,omitempty"`
}
