package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
)

// Errors the Service refuses a stream with.
var (
	ErrClosed         = errors.New("ingest: shutting down")
	ErrStreamLive     = errors.New("ingest: a stream with this identity is already live in the room")
	ErrTooManyStreams = errors.New("ingest: too many live streams (ingest.max_streams)")
)

// Media is what ingest needs from the SFU; *sfu.SFU satisfies it.
type Media interface {
	PublishLocal(room string, o sfu.LocalTrackOptions) (*sfu.LocalTrack, error)
	// NewIngressPeerConnection is used by WHIP only.
	NewIngressPeerConnection() (*webrtc.PeerConnection, error)
}

// Deps are the Service's collaborators; cmd wires them.
type Deps struct {
	Media Media
	// Keys resolves WHIP Bearer tokens (the same stream keys as RTMP).
	// Required when WHIP is enabled.
	Keys      rtmp.KeyStore
	Directory Directory // nil: NopDirectory
	Logger    *slog.Logger
	// Registerer receives the parley_ingest_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Placer is cluster mode's room placement (placement.go); nil on a
	// single node.
	Placer RoomPlacer
}

// Service puts ingest streams into rooms: it is the rtmp.Sink for the
// RTMP server and serves WHIP. Each stream is a participant that
// publishes local tracks through the SFU and is announced to viewers
// through the Directory. One live stream per (room, identity), whatever
// the protocol; a stream that reconnects within ReconnectGrace keeps its
// participant id.
type Service struct {
	cfg   Config
	media Media
	keys  rtmp.KeyStore
	dir   Directory
	place RoomPlacer // nil: every room is here
	log   *slog.Logger
	m     *metrics

	// life serialises every stream lifecycle step and the Directory calls
	// it makes, so the Directory sees one stream's calls in order.
	life    sync.Mutex
	entries map[string]*entry // by room + "\x00" + identity
	live    int
	relays  map[*relay]struct{} // RTMP publishes relayed to another node (relay.go)
	closed  bool

	wg sync.WaitGroup // WHIP goroutines and pending grace timers

	whipMu  sync.Mutex
	whipRes map[string]*whipSession // by resource id
	limiter *ipLimiter
}

var _ rtmp.Sink = (*Service)(nil)

// entry is a participant slot: live while a stream publishes, lingering
// for ReconnectGrace after it ends.
type entry struct {
	key, room, identity, name, pid string
	live                           *stream
	timer                          *time.Timer
	gen                            uint64
}

// New validates cfg and builds a Service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Media == nil {
		return nil, errors.New("ingest: Deps.Media is required")
	}
	if cfg.WHIP.Enabled && deps.Keys == nil {
		return nil, errors.New("ingest: Deps.Keys is required when ingest.whip.enabled is true")
	}
	if deps.Directory == nil {
		deps.Directory = NopDirectory{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	limiter, err := newIPLimiter(cfg.WHIP.RequestsPerMinute)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg, media: deps.Media, keys: deps.Keys, dir: deps.Directory, place: deps.Placer,
		log: deps.Logger.With("component", "ingest"), m: m,
		entries: map[string]*entry{},
		relays:  map[*relay]struct{}{},
		whipRes: map[string]*whipSession{},
		limiter: limiter,
	}, nil
}

// Run waits for ctx to end, then ends every stream (WHIP connections
// close; RTMP sessions unpublish and the RTMP server closes their
// connections on its own shutdown), tells the Directory they left, and
// returns once every goroutine the Service started has exited.
func (s *Service) Run(ctx context.Context) error {
	s.watchKeys(ctx)
	s.life.Lock()
	s.closed = true
	var relays []*relay
	for r := range s.relays {
		if r.out != nil { // nil: still dialing; startRelay sees closed
			relays = append(relays, r)
		}
	}
	var live []*stream
	for k, e := range s.entries {
		if e.live != nil {
			live = append(live, e.live)
			continue
		}
		if e.timer != nil && e.timer.Stop() {
			s.wg.Done()
		}
		delete(s.entries, k)
		s.dir.RemoveStream(e.room, e.pid)
	}
	s.life.Unlock()
	for _, st := range live {
		st.close()
	}
	// Their DELETEs end the streams on the hosting nodes at once; in
	// parallel, so unreachable nodes cost one DELETE timeout, not one each.
	var ends sync.WaitGroup
	for _, r := range relays {
		ends.Go(r.end)
	}
	ends.Wait()
	s.wg.Wait()
	return nil
}

// StreamStatus describes one live stream (admin API).
type StreamStatus struct {
	Room             string    `json:"room"`
	Identity         string    `json:"identity"`
	Name             string    `json:"name"`
	ParticipantID    string    `json:"participantId"`
	Protocol         string    `json:"protocol"`
	Since            time.Time `json:"since"`
	AudioUnavailable string    `json:"audioUnavailable,omitempty"`
	KeyframeRequests uint64    `json:"keyframeRequests"`
	// RelayedTo is the base URL of the cluster node an RTMP publish is
	// relayed to (relay.go); its participant lives there, so
	// ParticipantID is empty.
	RelayedTo string `json:"relayedTo,omitempty"`
}

// Streams lists the live streams, sorted by room and identity.
func (s *Service) Streams() []StreamStatus {
	s.life.Lock()
	defer s.life.Unlock()
	out := []StreamStatus{}
	for _, e := range s.entries {
		if st := e.live; st != nil {
			out = append(out, st.status())
		}
	}
	for r := range s.relays {
		if r.out != nil {
			out = append(out, r.status())
		}
	}
	slices.SortFunc(out, func(a, b StreamStatus) int {
		return cmp.Or(cmp.Compare(a.Room, b.Room), cmp.Compare(a.Identity, b.Identity))
	})
	return out
}

// begin claims the (room, identity) slot for a new publish.
// logAttrs are added to the stream's logger.
func (s *Service) begin(b rtmp.Binding, protocol, remote string, logAttrs ...any) (*stream, error) {
	if b.Room == "" {
		return nil, fmt.Errorf("ingest: stream key has no room")
	}
	identity := b.Identity
	if identity == "" {
		identity = DefaultIdentity(b.Name)
	}
	name := b.Name
	if name == "" {
		name = identity
	}
	s.life.Lock()
	defer s.life.Unlock()
	refuse := func(reason string, err error) (*stream, error) {
		s.m.refused.WithLabelValues(protocol, reason).Inc()
		return nil, err
	}
	if s.closed {
		return refuse("shutdown", ErrClosed)
	}
	k := b.Room + "\x00" + identity
	e := s.entries[k]
	if e != nil && e.live != nil {
		return refuse("identity_live", fmt.Errorf("stream %q in room %q: %w", identity, b.Room, ErrStreamLive))
	}
	if s.live+len(s.relays) >= s.cfg.MaxStreams {
		return refuse("max_streams", ErrTooManyStreams)
	}
	if e != nil {
		// Reconnect within the grace period: same participant.
		if e.timer != nil && e.timer.Stop() {
			s.wg.Done()
		}
		e.timer = nil
		e.gen++
		e.name = name
		s.m.reconnect.Inc()
	} else {
		e = &entry{key: k, room: b.Room, identity: identity, name: name, pid: ids.New("PA_")}
		if err := s.dir.AddStream(e.room, e.pid, identity, name); err != nil {
			return refuse("directory", fmt.Errorf("room %q refused stream %q: %w", b.Room, identity, err))
		}
		s.entries[k] = e
	}
	st := &stream{s: s, e: e, protocol: protocol, since: time.Now(), keyID: b.KeyID,
		log: s.log.With("room", e.room, "participant", e.pid, "identity", identity, "protocol", protocol, "remote", remote).With(logAttrs...)}
	e.live = st
	s.live++
	s.m.streams.WithLabelValues(protocol).Inc()
	s.m.started.WithLabelValues(protocol).Inc()
	st.log.Info("ingest stream started")
	return st, nil
}

// finish releases st's slot (called with life held): the participant
// lingers for ReconnectGrace, then leaves.
func (s *Service) finish(st *stream) {
	e := st.e
	if e.live != st {
		return
	}
	e.live = nil
	s.live--
	s.m.streams.WithLabelValues(st.protocol).Dec()
	st.log.Info("ingest stream ended", "duration", time.Since(st.since).Round(time.Millisecond))
	if s.closed || s.cfg.ReconnectGrace == 0 {
		delete(s.entries, e.key)
		s.dir.RemoveStream(e.room, e.pid)
		return
	}
	gen := e.gen
	s.wg.Add(1)
	e.timer = time.AfterFunc(s.cfg.ReconnectGrace, func() {
		defer s.wg.Done()
		s.life.Lock()
		defer s.life.Unlock()
		if s.entries[e.key] != e || e.live != nil || e.gen != gen {
			return
		}
		delete(s.entries, e.key)
		s.dir.RemoveStream(e.room, e.pid)
	})
}
