package ingest

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu"
)

// stream is one live publish (RTMP session or WHIP resource): the local
// tracks it publishes and what must be closed when it ends.
type stream struct {
	s        *Service
	e        *entry
	protocol string
	since    time.Time
	log      *slog.Logger

	// Guarded by s.life.
	tracks      []*sfu.LocalTrack
	audioReason string
	closed      bool
	onClose     []func() // run after the tracks are unpublished

	audioDown atomic.Bool // a cheap check on the audio packet path
	keyframes atomic.Uint64

	keyID   string      // the stream key's id, for revocation checks
	revoked atomic.Bool // the key was revoked while live: writes fail
}

// revoke ends a stream whose key was revoked while it was live. An RTMP
// publisher learns it from its next packet (the writer fails with
// rtmp.ErrRevoked and the RTMP server disconnects it); a WHIP session is
// closed here.
func (st *stream) revoke() {
	if st.revoked.Swap(true) {
		return
	}
	st.s.m.revokedLive.WithLabelValues(st.protocol).Inc()
	st.log.Info("ingest stream key revoked while live: ending the stream")
	if st.protocol == "whip" {
		st.close()
	}
}

func (st *stream) status() StreamStatus {
	return StreamStatus{Room: st.e.room, Identity: st.e.identity, Name: st.e.name, ParticipantID: st.e.pid,
		Protocol: st.protocol, Since: st.since, AudioUnavailable: st.audioReason, KeyframeRequests: st.keyframes.Load()}
}

// addTrack publishes a local track for the stream and announces it.
func (st *stream) addTrack(codec webrtc.RTPCodecCapability, clientTrackID string, onKeyframe func()) (*sfu.LocalTrack, error) {
	s := st.s
	s.life.Lock()
	defer s.life.Unlock()
	if st.closed {
		return nil, fmt.Errorf("ingest: add track: %w", ErrClosed)
	}
	lt, err := s.media.PublishLocal(st.e.room, sfu.LocalTrackOptions{
		ParticipantID:     st.e.pid,
		ClientTrackID:     clientTrackID,
		Codec:             codec,
		OnKeyframeRequest: onKeyframe,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: publish %s in %s: %w", codec.MimeType, st.e.room, err)
	}
	st.tracks = append(st.tracks, lt)
	info := lt.Info()
	source := "camera"
	if info.Kind == "audio" {
		source = "microphone"
	}
	s.dir.StreamTrackPublished(st.e.room, st.e.pid, info, source)
	st.log.Info("ingest track published", "track", info.SID, "codec", codec.MimeType, "fmtp", codec.SDPFmtpLine)
	return lt, nil
}

// setAudioUnavailable records (reason != "") or clears (reason == "")
// an audio problem and tells the Directory when the state changes.
func (st *stream) setAudioUnavailable(reason string) {
	s := st.s
	s.life.Lock()
	defer s.life.Unlock()
	if st.closed || st.audioReason == reason {
		return
	}
	st.audioReason = reason
	st.audioDown.Store(reason != "")
	if reason != "" {
		st.log.Warn("ingest audio unavailable", "reason", reason)
	} else {
		st.log.Info("ingest audio flowing again")
	}
	s.dir.StreamAudioUnavailable(st.e.room, st.e.pid, reason)
}

// ended reports whether close has run (or is running).
func (st *stream) ended() bool {
	st.s.life.Lock()
	defer st.s.life.Unlock()
	return st.closed
}

// close unpublishes the tracks, runs the close hooks and releases the
// slot. Safe to call more than once and from any goroutine that holds no
// Service lock.
func (st *stream) close() {
	s := st.s
	s.life.Lock()
	if st.closed {
		s.life.Unlock()
		return
	}
	st.closed = true
	for _, lt := range st.tracks {
		_ = lt.Close()
		s.dir.StreamTrackUnpublished(st.e.room, st.e.pid, lt.Info())
	}
	hooks := st.onClose
	s.finish(st)
	s.life.Unlock()
	for _, f := range hooks {
		f()
	}
}

// keyframeUnsupported counts a viewer's key-frame request that cannot
// reach an RTMP encoder: the stream's keyframe interval is all we have.
func (st *stream) keyframeUnsupported() {
	n := st.keyframes.Add(1)
	st.s.m.keyframes.WithLabelValues(st.protocol, "unsupported").Inc()
	if n == 1 || n%100 == 0 {
		st.log.Debug("viewer asked for a key frame; RTMP cannot forward it (set the keyframe interval to 1 s)", "count", n)
	}
}

func isAudio(mime string) bool { return strings.HasPrefix(strings.ToLower(mime), "audio/") }
