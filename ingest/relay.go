package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/ingest/internal/whipout"
	"github.com/parleyhq/parley/rtmp"
)

// In cluster mode a room's media lives on the node that hosts it. An RTMP
// publish that lands on another node is relayed there over WHIP: OBS
// keeps its one RTMP connection to this node, and the hosting node sees
// an ordinary WHIP publish with the same stream key (cluster mode shares
// the keys between nodes), which it puts in the room as it would OBS's
// own. Nothing of the stream is in this node's SFU or Directory.

// relayHTTPTimeout bounds each request of a relay (the POST; the DELETE
// has whipout's shorter bound).
const relayHTTPTimeout = 10 * time.Second

// relayDisconnectedGrace is how long a relay's connection may stay
// disconnected (after pion's 5 s without an answer) before the relay
// gives up.
const relayDisconnectedGrace = 5 * time.Second

// relayVideo and relayAudio are what a relay offers: the SFU's H.264
// (constrained baseline, packetization-mode=1) and Opus. The offer is
// made before the RTMP stream's sequence headers are parsed, so the
// stream's own profile is not known yet; a main or high profile stream
// goes out under this one, as the hosting node's WHIP would accept it.
var (
	relayVideo = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, //nolint:gochecknoglobals // read-only
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	relayAudio = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, //nolint:gochecknoglobals // read-only
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
)

// relay is one RTMP publish relayed to the node hosting its room; it is
// the rtmp.Session the RTMP server drives.
type relay struct {
	s        *Service
	node     string // the hosting node's base URL
	room     string
	identity string
	name     string
	keyID    string
	since    time.Time
	log      *slog.Logger
	out      *whipout.Session

	keyframes atomic.Uint64
	revoked   atomic.Bool // the key was revoked while live: writes fail
	lost      atomic.Bool // the connection to the node failed (logged once)
	audioDown atomic.Bool // a cheap check on the audio packet path
	closeOnce sync.Once

	// Guarded by s.life.
	audioReason string
}

var _ rtmp.Session = (*relay)(nil)

// hostingNode returns "" when room's media is here (always on a single
// node) or else the base URL of the node that hosts it.
func (s *Service) hostingNode(ctx context.Context, room string) (string, error) {
	if s.place == nil || room == "" {
		return "", nil
	}
	node, err := s.place.PlaceRoom(ctx, room)
	if err != nil {
		return "", fmt.Errorf("ingest: cannot tell which node hosts room %q: %w", room, err)
	}
	return node, nil
}

// startRelay publishes info's stream to the WHIP endpoint of node. It
// returns once the connection is up (bounded by ctx), so the stream's
// first key frame, which comes right after "publish started", is not
// lost; a refusal there (unknown key, identity live, room refused)
// refuses the RTMP publish.
func (s *Service) startRelay(ctx context.Context, info rtmp.StreamInfo, node string) (rtmp.Session, error) {
	b := info.Binding
	identity := b.Identity
	if identity == "" {
		identity = DefaultIdentity(b.Name)
	}
	r := &relay{s: s, node: strings.TrimSuffix(node, "/"), room: b.Room, identity: identity, name: cmp.Or(b.Name, identity),
		keyID: b.KeyID, since: time.Now()}
	r.log = s.log.With("room", b.Room, "identity", identity, "protocol", "rtmp", "node", r.node,
		"remote", info.RemoteAddr, "stream", info.StreamID)

	s.life.Lock()
	switch {
	case s.closed:
		s.life.Unlock()
		s.m.refused.WithLabelValues("rtmp", "shutdown").Inc()
		return nil, ErrClosed
	case s.live+len(s.relays) >= s.cfg.MaxStreams:
		s.life.Unlock()
		s.m.refused.WithLabelValues("rtmp", "max_streams").Inc()
		return nil, ErrTooManyStreams
	}
	s.relays[r] = struct{}{} // holds the slot while dialing
	s.life.Unlock()

	path := s.cfg.WHIP.Path
	if path == "" {
		path = DefaultConfig().WHIP.Path
	}
	out, err := whipout.Dial(ctx, whipout.Options{
		Endpoint:          r.node + path,
		Token:             info.Key,
		NewPeerConnection: s.media.NewIngressPeerConnection,
		Video:             &relayVideo,
		Audio:             &relayAudio,
		VideoTrackID:      "rtmp-video",
		AudioTrackID:      "rtmp-audio",
		StreamID:          "parley-relay",
		OnKeyframeRequest: r.keyframeUnsupported,
		HTTPClient:        &http.Client{Timeout: relayHTTPTimeout},
		// The hosting node going away (or ending the session) ends the
		// publish within about 10 s, so OBS reconnects and is placed
		// again, instead of streaming into nothing for half a minute.
		DisconnectedGrace: relayDisconnectedGrace,
	})
	if err != nil {
		s.life.Lock()
		delete(s.relays, r)
		s.life.Unlock()
		s.m.refused.WithLabelValues("rtmp", "relay").Inc()
		r.log.Info("ingest relay refused", "err", err)
		return nil, fmt.Errorf("ingest: relay to %s: %w", r.node, err)
	}
	s.life.Lock()
	r.out = out // from here Run and Streams see the relay
	closed := s.closed
	s.m.relays.Inc()
	s.life.Unlock()
	if closed { // Run ended the streams while we dialed
		r.end()
		return nil, ErrClosed
	}
	s.m.relayed.Inc()
	r.log.Info("ingest relay started")
	return r, nil
}

func (r *relay) AddVideoTrack(spec rtmp.TrackSpec) (rtmp.TrackWriter, error) {
	if !strings.EqualFold(spec.MimeType, relayVideo.MimeType) {
		return nil, fmt.Errorf("ingest: relay: video codec %s (only H.264 is relayed)", spec.MimeType)
	}
	if spec.SDPFmtpLine != relayVideo.SDPFmtpLine {
		r.log.Debug("relaying H.264 under the offered constrained-baseline format", "fmtp", spec.SDPFmtpLine)
	}
	return relayWriter{r: r, write: r.out.WriteVideo}, nil
}

func (r *relay) AddAudioTrack(spec rtmp.TrackSpec) (rtmp.TrackWriter, error) {
	if !strings.EqualFold(spec.MimeType, relayAudio.MimeType) {
		return nil, fmt.Errorf("ingest: relay: audio codec %s (only Opus is relayed)", spec.MimeType)
	}
	return relayWriter{r: r, write: r.out.WriteAudio, audio: true}, nil
}

// AudioUnavailable is recorded for Streams() and the log; WHIP has no
// way to tell the hosting node, whose viewers just get no audio.
func (r *relay) AudioUnavailable(reason error) {
	msg := "audio unavailable"
	if reason != nil {
		msg = reason.Error()
	}
	r.setAudioReason(msg)
}

func (r *relay) setAudioReason(reason string) {
	r.s.life.Lock()
	changed := r.audioReason != reason
	r.audioReason = reason
	r.audioDown.Store(reason != "")
	r.s.life.Unlock()
	switch {
	case !changed:
	case reason != "":
		r.log.Warn("ingest audio unavailable", "reason", reason)
	default:
		r.log.Info("ingest audio flowing again")
	}
}

// Close ends the relay: the WHIP resource is DELETEd, so the hosting
// node ends the stream at once.
func (r *relay) Close() error {
	r.end()
	return nil
}

// end is Close, also run by Service.Run at shutdown (the RTMP server
// closes the session later; the second call does nothing).
func (r *relay) end() {
	r.closeOnce.Do(func() {
		s := r.s
		s.life.Lock()
		delete(s.relays, r)
		s.m.relays.Dec()
		s.life.Unlock()
		if err := r.out.Close(); err != nil {
			r.log.Debug("ingest relay close", "err", err)
		}
		r.log.Info("ingest relay ended", "duration", time.Since(r.since).Round(time.Millisecond))
	})
}

// keyframeUnsupported counts a key-frame request from the hosting node:
// like a local viewer's, it cannot reach an RTMP encoder.
func (r *relay) keyframeUnsupported() {
	n := r.keyframes.Add(1)
	r.s.m.keyframes.WithLabelValues("rtmp", "unsupported").Inc()
	if n == 1 || n%100 == 0 {
		r.log.Debug("hosting node asked for a key frame; RTMP cannot forward it (set the keyframe interval to 1 s)", "count", n)
	}
}

// revoke ends a relay whose key was revoked while live: the RTMP side
// learns it from the next write. The hosting node ends its side itself.
func (r *relay) revoke() {
	if r.revoked.Swap(true) {
		return
	}
	r.s.m.revokedLive.WithLabelValues("rtmp").Inc()
	r.log.Info("ingest stream key revoked while live: ending the relayed stream")
}

func (r *relay) status() StreamStatus {
	return StreamStatus{Room: r.room, Identity: r.identity, Name: r.name, Protocol: "rtmp", Since: r.since,
		AudioUnavailable: r.audioReason, KeyframeRequests: r.keyframes.Load(), RelayedTo: r.node}
}

// relayWriter is one track of a relay.
type relayWriter struct {
	r     *relay
	write func(*rtp.Packet) error
	audio bool
}

func (w relayWriter) WriteRTP(p *rtp.Packet) error {
	r := w.r
	if r.revoked.Load() {
		return fmt.Errorf("ingest: %w", rtmp.ErrRevoked)
	}
	err := w.write(p)
	switch {
	case err == nil:
		if w.audio && r.audioDown.Load() {
			r.setAudioReason("")
		}
		return nil
	case errors.Is(err, whipout.ErrConnectionFailed), errors.Is(err, whipout.ErrClosed):
		if !r.lost.Swap(true) {
			r.log.Warn("ingest relay lost its connection to the hosting node: ending the publish", "err", err)
		}
		return fmt.Errorf("ingest: relay to %s: %w: %w", r.node, err, rtmp.ErrSessionEnded)
	default:
		return fmt.Errorf("ingest: relay: %w", err)
	}
}
