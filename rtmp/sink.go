package rtmp

import (
	"context"
	"errors"

	"github.com/pion/rtp"
)

// Binding is what a stream key grants: publishing into Room as the
// participant Identity, shown to others as Name.
type Binding struct {
	Room     string
	Name     string
	Identity string
	// KeyID names the stream key (never the secret) so the Sink can end
	// the stream if the key is revoked while it is live.
	KeyID string
}

// Sentinel errors a KeyStore returns; the server refuses the publish with a
// matching message and counts it by reason.
var (
	ErrUnknownKey = errors.New("unknown stream key")
	ErrRevoked    = errors.New("stream key revoked")
)

// ErrSessionEnded is what a TrackWriter returns (wrapped) when the Sink
// can no longer carry the stream, for instance when the relay to the
// cluster node that hosts the room failed: the publisher is told and
// disconnected, and an encoder that reconnects gets a fresh Session.
var ErrSessionEnded = errors.New("stream ended by the server")

// KeyStore resolves stream keys. Lookup must be safe for concurrent use and
// should return ErrUnknownKey or ErrRevoked (possibly wrapped) for keys that
// must be refused; any other error refuses the publish as "internal".
// Errors are logged, so they must not contain the key itself.
type KeyStore interface {
	Lookup(ctx context.Context, key string) (Binding, error)
}

// StreamInfo describes an accepted publish.
type StreamInfo struct {
	Binding    Binding
	StreamID   string // unique per publish, for logs and metrics
	RemoteAddr string
	// Key is the stream key itself, a secret: a Sink that relays the
	// stream to another node authenticates with it there. It must never
	// be logged, counted or shown; StreamInfo is never logged whole.
	Key string
}

// TrackSpec describes the RTP a TrackWriter will receive. The SFU makes a
// local track with exactly this codec capability.
type TrackSpec struct {
	MimeType    string // "video/H264" or "audio/opus"
	ClockRate   uint32 // 90000 or 48000
	Channels    uint16 // 2 for Opus, 0 for video
	SDPFmtpLine string // e.g. "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	// PayloadType and SSRC are what the packets carry (96/111 and a random
	// SSRC); the SFU is expected to rewrite them per subscriber.
	PayloadType uint8
	SSRC        uint32
	// Width and Height are the coded picture size from the SPS (video only).
	Width, Height int
}

// TrackWriter takes the RTP packets of one track. WriteRTP must not block
// for long: it is called on the RTMP connection's read goroutine (video) or
// the transcoder's reader (audio). The packet is not reused after the call
// returns, so implementations may keep it.
type TrackWriter interface {
	// WriteRTP hands one packet on. An error wrapping ErrRevoked ends the
	// publish (the key was revoked while live), as does one wrapping
	// ErrSessionEnded: the publisher is told and disconnected. Other
	// errors are logged and the stream goes on.
	WriteRTP(p *rtp.Packet) error
}

// Session is one publish as the SFU sees it: a participant that publishes
// up to one video and one audio track.
type Session interface {
	// AddVideoTrack is called once, when the first AVC sequence header has
	// been parsed, before any video packet.
	AddVideoTrack(spec TrackSpec) (TrackWriter, error)
	// AddAudioTrack is called once, when the first AAC sequence header has
	// been parsed, before any audio packet.
	AddAudioTrack(spec TrackSpec) (TrackWriter, error)
	// AudioUnavailable tells the SFU that audio is not flowing (transcoder
	// missing or dying, unsupported audio codec); video continues. It may be
	// called more than once; audio resumes on the same TrackWriter if the
	// transcoder recovers.
	AudioUnavailable(reason error)
	// Close ends the publish; the participant leaves. Called exactly once.
	Close() error
}

// Sink creates a Session per accepted publish. Start is called while the
// publisher waits for "publish started": an error refuses the publish. ctx
// bounds the Start call only (5 s); the Session lives until Close.
type Sink interface {
	Start(ctx context.Context, info StreamInfo) (Session, error)
}
