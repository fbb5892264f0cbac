package sfu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// LocalTrackOptions describes a track published from inside the process,
// for ingest (RTMP, WHIP) that produces RTP itself rather than through a
// publisher PeerConnection.
type LocalTrackOptions struct {
	// ParticipantID is the id subscribers see in the stream id
	// "<ParticipantID>|<track sid>". It must not be a joined peer's id.
	ParticipantID string
	ClientTrackID string
	// Codec must be one the SFU negotiates (Opus, VP8, VP9, H.264 with
	// packetization-mode=1 and profile 42e01f or 42001f).
	Codec webrtc.RTPCodecCapability
	// OnKeyframeRequest is called (throttled by pli_interval) when a
	// subscriber needs a key frame. It must not block.
	OnKeyframeRequest func()
}

// LocalTrack is a published in-process track. WriteRTP feeds it.
type LocalTrack struct {
	t   *publishedTrack
	mu  sync.Mutex
	hdr rtp.Header
}

// PublishLocal publishes an in-process track to a room (created if
// needed); every subscriber in the room receives it like any other track.
func (s *SFU) PublishLocal(roomName string, o LocalTrackOptions) (*LocalTrack, error) {
	if roomName == "" || o.ParticipantID == "" {
		return nil, errors.New("sfu: publish local: room and participant id are required")
	}
	kind := ""
	for _, c := range append(append([]webrtc.RTPCodecParameters(nil), videoCodecs...), audioCodecs...) {
		if strings.EqualFold(c.MimeType, o.Codec.MimeType) {
			kind = "video"
			if strings.HasPrefix(strings.ToLower(c.MimeType), "audio/") {
				kind = "audio"
			}
			if o.Codec.ClockRate == 0 {
				o.Codec.ClockRate = c.ClockRate
			}
			break
		}
	}
	if kind == "" {
		return nil, fmt.Errorf("sfu: publish local: codec %q is not supported", o.Codec.MimeType)
	}
	req := o.OnKeyframeRequest
	t := newPublishedTrack(s, trackParams{
		room: roomName,
		info: TrackInfo{SID: newTrackSID(), ParticipantID: o.ParticipantID, ClientTrackID: o.ClientTrackID,
			Kind: kind, Codec: o.Codec.MimeType},
		clockRate: o.Codec.ClockRate,
		fmtp:      o.Codec.SDPFmtpLine,
		sendPLI: func() error {
			if req != nil {
				req()
			}
			return nil
		},
	})
	subs, ok := s.addTrack(t)
	if !ok {
		return nil, fmt.Errorf("sfu: publish local in %s: %w", roomName, ErrClosed)
	}
	for _, p := range subs {
		p.subscribe(t)
	}
	return &LocalTrack{t: t}, nil
}

// Info describes the track (SID assigned by the SFU).
func (l *LocalTrack) Info() TrackInfo { return l.t.info }

// WriteRTP forwards one RTP packet (header and payload, as on the wire).
// The packet is copied; the caller may reuse it. Safe for concurrent use.
func (l *LocalTrack) WriteRTP(pkt []byte) error {
	if l.t.ended.Load() {
		return ErrClosed
	}
	if len(pkt) > 1500 {
		return fmt.Errorf("sfu: local track %s: packet of %d bytes exceeds 1500", l.t.info.SID, len(pkt))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.handlePacket(pkt, &l.hdr, time.Now())
	return nil
}

// Stats is a snapshot of the track's counters.
func (l *LocalTrack) Stats() TrackStats { return l.t.stats() }

// Close unpublishes the track from every subscriber.
func (l *LocalTrack) Close() error {
	l.t.end()
	return nil
}
