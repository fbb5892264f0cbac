package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
)

// Start implements rtmp.Sink: the publish becomes (or, on a reconnect
// within the grace period, takes back) a participant of the key's room.
// It fails when the identity is already live in the room (by RTMP or
// WHIP), when max_streams is reached, or when the Directory refuses.
// In cluster mode a room hosted by another node gets the stream relayed
// there (relay.go), and a placement failure refuses it (OBS retries).
func (s *Service) Start(ctx context.Context, info rtmp.StreamInfo) (rtmp.Session, error) {
	node, err := s.hostingNode(ctx, info.Binding.Room)
	if err != nil {
		s.m.refused.WithLabelValues("rtmp", "placement").Inc()
		s.log.Warn("RTMP publish refused: room placement failed", "room", info.Binding.Room, "stream", info.StreamID, "err", err)
		return nil, err
	}
	if node != "" {
		return s.startRelay(ctx, info, node)
	}
	st, err := s.begin(info.Binding, "rtmp", info.RemoteAddr, "stream", info.StreamID)
	if err != nil {
		return nil, err
	}
	return &rtmpSession{st: st}, nil
}

// rtmpSession adapts a stream to rtmp.Session.
type rtmpSession struct {
	st *stream
}

func (r *rtmpSession) AddVideoTrack(spec rtmp.TrackSpec) (rtmp.TrackWriter, error) {
	return r.addTrack(spec, "rtmp-video", r.st.keyframeUnsupported)
}

func (r *rtmpSession) AddAudioTrack(spec rtmp.TrackSpec) (rtmp.TrackWriter, error) {
	return r.addTrack(spec, "rtmp-audio", nil)
}

func (r *rtmpSession) addTrack(spec rtmp.TrackSpec, id string, onKeyframe func()) (rtmp.TrackWriter, error) {
	lt, err := r.st.addTrack(webrtc.RTPCodecCapability{
		MimeType: spec.MimeType, ClockRate: spec.ClockRate, Channels: spec.Channels, SDPFmtpLine: spec.SDPFmtpLine,
	}, id, onKeyframe)
	if err != nil {
		return nil, err
	}
	return &rtpWriter{lt: lt, st: r.st, audio: isAudio(spec.MimeType)}, nil
}

// AudioUnavailable is told by the RTMP side that audio stopped (ffmpeg
// missing or dying, unsupported codec); the audio writer clears it when
// packets flow again.
func (r *rtmpSession) AudioUnavailable(reason error) {
	msg := "audio unavailable"
	if reason != nil {
		msg = reason.Error()
	}
	r.st.setAudioUnavailable(msg)
}

func (r *rtmpSession) Close() error {
	r.st.close()
	return nil
}

// rtpWriter marshals rtmp's packets into the local track. The RTMP side
// calls it from one goroutine per track; the mutex only guards buf.
type rtpWriter struct {
	lt    *sfu.LocalTrack
	st    *stream
	audio bool // clears "audio unavailable" when packets flow
	mu    sync.Mutex
	buf   [1500]byte
}

func (w *rtpWriter) WriteRTP(p *rtp.Packet) error {
	if w.st.revoked.Load() {
		return fmt.Errorf("ingest: %w", rtmp.ErrRevoked)
	}
	if w.audio && w.st.audioDown.Load() {
		w.st.setAudioUnavailable("")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := p.MarshalTo(w.buf[:])
	if err != nil {
		if errors.Is(err, io.ErrShortBuffer) {
			return fmt.Errorf("ingest: RTP packet larger than %d bytes", len(w.buf))
		}
		return fmt.Errorf("ingest: marshal RTP: %w", err)
	}
	return w.lt.WriteRTP(w.buf[:n])
}
