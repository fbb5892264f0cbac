package sfu

import (
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
)

// Target names one of a participant's two PeerConnections. The publisher
// connection carries media from the client to the SFU (the client offers);
// the subscriber connection carries media from the SFU to the client (the
// SFU offers). Two connections mean renegotiation never glares.
type Target int

const (
	Publisher Target = iota
	Subscriber
)

func (t Target) String() string {
	if t == Subscriber {
		return "subscriber"
	}
	return "publisher"
}

// PeerEvents receives what the SFU needs to tell the signaling layer about
// one participant. Implementations must not block: they are called from
// pion's goroutines and should only queue a message.
type PeerEvents interface {
	// SubscriberOffer asks the client to answer a new subscriber offer.
	SubscriberOffer(offer webrtc.SessionDescription)
	// ICECandidate is a local candidate for the given connection; nil
	// means gathering is complete.
	ICECandidate(target Target, c *webrtc.ICECandidateInit)
	// TrackPublished reports a track the participant started sending.
	TrackPublished(t TrackInfo)
	// TrackUnpublished reports a track that ended.
	TrackUnpublished(t TrackInfo)
	// ConnectionState reports a PeerConnection state change.
	ConnectionState(target Target, state webrtc.PeerConnectionState)
}

// JoinOptions configures one participant's media session.
type JoinOptions struct {
	Events       PeerEvents
	CanPublish   bool
	CanSubscribe bool
	Logger       *slog.Logger
}

// TrackInfo describes a published track. ClientTrackID is the track id the
// publisher put in its SDP (a=msid), which browsers set to
// MediaStreamTrack.id; signaling uses it to attach the source announced in
// the "publish" message.
type TrackInfo struct {
	SID           string // server track id, "TR_..."
	ParticipantID string
	ClientTrackID string
	Kind          string // "audio" or "video"
	Codec         string // MIME type, e.g. "video/VP8"
}

// ReceiverStats is one subscriber of a track, as the admin API shows it.
type ReceiverStats struct {
	ParticipantID string
	// Layer is the rid of the simulcast layer it receives ("" for a track
	// without simulcast, or while it receives none).
	Layer string
	// Temporal is the highest VP8 temporal layer of it the subscriber
	// receives when the SFU leaves the others out for bandwidth (0: the
	// base frame rate only, a quarter of the full rate with Chrome's
	// three layers; 1: half), -1 when it receives every frame.
	Temporal int
	// EstimatedBps is the subscriber connection's estimated available
	// bandwidth (0 before the first estimate; unbounded when bandwidth
	// estimation is off is reported as 0 too).
	EstimatedBps int
	// Probing: the SFU is probing the subscriber connection for more
	// bandwidth (a probe cluster is sent or awaits its feedback).
	Probing bool
	// What the SFU sent this subscriber of the track: RTP packets and
	// their payload bytes on the media stream (retransmissions included
	// when the subscriber negotiated no RTX stream), and on its RTX
	// stream. A subscriber that hides the track's tile (or whose layer
	// is paused) sees PacketsSent stop.
	PacketsSent, BytesSent       uint64
	RTXPacketsSent, RTXBytesSent uint64
	// LayerSince is when the SFU started forwarding Layer to the
	// subscriber: the arrival of the layer's key frame it switched at
	// (zero while it receives no layer, and for a track without
	// simulcast).
	LayerSince time.Time
	// View is the subscriber's last report of how it shows the track
	// (video_view), nil before one: why it gets the layer it gets, or
	// none (a hidden tile).
	View *TileView
}

// TileView is a subscriber's report of how it shows a video track: its
// size in device pixels (0x0 when unknown) and whether it is seen.
type TileView struct {
	Width, Height int
	Visible       bool
}

// LayerStats is one simulcast layer of a published track as it arrives
// at the SFU.
type LayerStats struct {
	RID string
	// BitrateBps is the layer's new media over the last one-second
	// window (retransmissions and padding left out).
	BitrateBps float64
	// LastMediaTime is when the layer's newest media packet arrived
	// (zero before the first): a browser that stopped encoding a layer
	// may still send padding on it, which does not count.
	LastMediaTime time.Time
}

// TrackStats is a snapshot of one published track's counters.
type TrackStats struct {
	TrackInfo
	Packets       uint64
	Bytes         uint64
	BitrateBps    float64
	PacketsLost   uint64  // detected from sequence gaps on the publisher leg
	FractionLost  float64 // 0..1 over the last report interval
	JitterMs      float64 // RFC 3550 interarrival jitter
	NACKsReceived uint64  // from subscribers
	NACKsSent     uint64  // upstream to the publisher
	Retransmits   uint64  // packets resent from the cache
	RTXSent       uint64  // of Retransmits, those sent on a subscriber's RTX stream
	RTXReceived   uint64  // retransmissions the publisher sent on its RTX stream
	PLIsReceived  uint64  // keyframe requests from subscribers
	PLIsSent      uint64  // keyframe requests forwarded to the publisher
	Subscribers   int
	// Receivers is what each subscriber gets of the track: for simulcast,
	// the layer it receives now; with the subscriber's estimated bandwidth.
	Receivers []ReceiverStats
	// Layers are the track's simulcast layers, lowest first (none for a
	// track without simulcast).
	Layers         []LayerStats
	Drops          map[string]uint64 // by reason
	Muted          bool
	LastPacketTime time.Time
}
