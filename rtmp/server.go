package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gortmp "github.com/livekit/go-rtmp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// Deps are the collaborators a Server needs; cmd wires them.
type Deps struct {
	Keys KeyStore
	Sink Sink
	// Transcoder turns AAC into Opus; nil means ffmpeg at cfg.FFmpegPath.
	Transcoder Transcoder
	Logger     *slog.Logger
	// Registerer receives the parley_rtmp_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Server is the RTMP ingest server.
type Server struct {
	cfg     Config
	keys    KeyStore
	sink    Sink
	log     *slog.Logger
	m       *metrics
	pubOpts publishOptions

	ctx context.Context // set by Serve; parent of every publish

	mu    sync.Mutex
	live  map[string]struct{} // stream keys with a live publish
	conns map[*deadlineConn]struct{}
	slots slotTable
	wg    sync.WaitGroup // one per accepted connection

	// test hooks
	onVideoPkts func(in time.Time, pkts []*rtp.Packet)
}

// New validates cfg and builds a Server; nothing listens until Run.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Keys == nil || deps.Sink == nil {
		return nil, errors.New("rtmp: Deps.Keys and Deps.Sink are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "rtmp")
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("rtmp metrics: %w", err)
	}
	tr := deps.Transcoder
	if tr == nil {
		tr = NewFFmpegTranscoder(FFmpegOptions{Path: cfg.FFmpegPath, Bitrate: cfg.OpusBitrate, Logger: log})
	}
	return &Server{
		cfg: cfg, keys: deps.Keys, sink: deps.Sink, log: log, m: m,
		pubOpts: publishOptions{MTU: cfg.MTU, Transcoder: tr, RestartMin: cfg.TranscoderRestartMin, RestartMax: cfg.TranscoderRestartMax},
		live:    map[string]struct{}{},
		conns:   map[*deadlineConn]struct{}{},
		slots:   slotTable{perAddr: map[netip.Prefix]*addrSlots{}},
	}, nil
}

// Run listens on cfg.Listen and serves until ctx ends. It returns nil at
// once when the server is disabled.
func (s *Server) Run(ctx context.Context) error {
	if !s.cfg.Enabled {
		return nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("rtmp listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, l)
}

// Serve accepts on l until ctx ends, then closes every connection (ending
// their publishes and transcoders) and returns after all have finished.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	s.log.Info("RTMP ingest listening", "addr", l.Addr().String(), "app", s.cfg.App)
	srv := gortmp.NewServer(&gortmp.ServerConfig{OnConnect: s.onConnect})
	ln := &acceptLimiter{Listener: l, s: s, ctx: ctx}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		_ = srv.Close()
		// go-rtmp's Close closes only a listener its Serve has already
		// registered; when ctx ends first (a sibling failed at start),
		// Serve would then accept forever. Closing l ourselves covers it.
		_ = l.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Conn.Close() // unblocks the read loop; go-rtmp then runs OnClose
		}
		s.mu.Unlock()
	}()
	err := srv.Serve(ln)
	cancel() // if Serve failed on its own, still close every connection
	<-stopped
	s.wg.Wait()
	if errors.Is(err, gortmp.ErrClosed) || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("rtmp serve: %w", err)
}

func (s *Server) claimKey(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[key]; ok {
		return false
	}
	s.live[key] = struct{}{}
	return true
}

func (s *Server) releaseKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, key)
}

// onConnect runs on go-rtmp's per-connection goroutine for every accepted
// connection (already registered by acceptLimiter).
func (s *Server) onConnect(nc net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
	dc := nc.(*deadlineConn)
	h := &connHandler{srv: s, nc: dc, log: s.log.With("remote", nc.RemoteAddr().String())}
	guard := &chunkGuard{deadlineConn: dc, parser: newChunkParser(), log: h.log}
	guard.unauth, guard.authed = s.cfg.limits()
	return guard, &gortmp.ConnConfig{
		Handler:                                 h,
		ReaderBufferSize:                        64 << 10,
		WriterBufferSize:                        4 << 10,
		IgnoreMessagesOnNotExistStream:          true,
		IgnoreMessagesOnNotExistStreamThreshold: 16,
		ControlState: gortmp.StreamControlStateConfig{
			DefaultBandwidthWindowSize: 6 << 20,
			MaxChunkSize:               uint32(s.cfg.MaxChunkSize),
			// The guard enforces max_chunk_streams on what the client
			// sends; go-rtmp's own cap also counts the server's streams.
			MaxChunkStreams:   max(32, s.cfg.MaxChunkStreams),
			MaxMessageSize:    uint32(s.cfg.MaxMessageSize),
			MaxMessageStreams: 4,
		},
		Logger: newLibLogger(h.log),
	}
}

// acceptLimiter registers accepted connections, gives each a slot (see
// slots.go) and keeps go-rtmp's accept loop (which retries every error at
// once) from spinning on a persistent error such as EMFILE.
type acceptLimiter struct {
	net.Listener
	s       *Server
	ctx     context.Context
	backoff time.Duration
}

func (a *acceptLimiter) Accept() (net.Conn, error) {
	for {
		nc, err := a.Listener.Accept()
		if err != nil {
			if a.ctx.Err() == nil {
				a.backoff = min(max(2*a.backoff, 5*time.Millisecond), time.Second)
				a.s.log.Warn("RTMP accept failed", "err", err, "retry_in", a.backoff)
				select {
				case <-time.After(a.backoff):
				case <-a.ctx.Done():
				}
			}
			return nil, err
		}
		a.backoff = 0
		s := a.s
		dc := s.newSlotConn(nc, time.Now())
		s.mu.Lock()
		if a.ctx.Err() != nil {
			s.mu.Unlock()
			_ = nc.Close()
			continue
		}
		victim, reason := s.admitLocked(dc.addr)
		if victim == nil && reason != "" {
			s.mu.Unlock()
			s.m.refuse(reason)
			_ = nc.Close()
			continue
		}
		if victim != nil {
			s.releaseSlotLocked(victim)
		}
		s.conns[dc] = struct{}{}
		s.takeSlotLocked(dc)
		s.wg.Add(1) // before Serve can return, so Wait never races Add
		s.mu.Unlock()
		if victim != nil {
			s.m.refuse(reason)
			s.log.Info("RTMP connection evicted for a newer one", "remote", victim.RemoteAddr().String(), "reason", reason)
			// Unblocks its read; go-rtmp then closes it through dc.Close.
			_ = victim.Conn.Close()
		}
		return dc, nil
	}
}

// deadlineConn applies the handshake deadline until publishing starts and
// the read timeout after, so stalled peers are dropped, and reports its
// close to the Server.
type deadlineConn struct {
	net.Conn
	s              *Server
	addr           netip.Prefix // per-address caps count it here
	acceptedAt     time.Time
	handshakeUntil time.Time
	slot           slotState // guarded by s.mu
	publishing     atomic.Bool
	timedOut       atomic.Bool  // the handshake deadline was counted
	closeAt        atomic.Int64 // unix ns; 0 = none
	closeOnce      sync.Once
}

// startPublishing is called once the publish key is accepted: the read
// timeout replaces the handshake deadline, the publishing limits replace
// the unauthenticated ones, and the slot leaves the unauthenticated pool.
func (c *deadlineConn) startPublishing() {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.publishingLocked(c)
	c.publishing.Store(true)
}

// closeBy makes reads fail at t at the latest, whatever the peer sends.
func (c *deadlineConn) closeBy(t time.Time) { c.closeAt.Store(t.UnixNano()) }

func (c *deadlineConn) Read(b []byte) (int, error) {
	d := c.handshakeUntil
	if c.publishing.Load() {
		d = time.Now().Add(c.s.cfg.ReadTimeout)
	}
	if at := c.closeAt.Load(); at != 0 && time.Unix(0, at).Before(d) {
		d = time.Unix(0, at)
	}
	_ = c.Conn.SetReadDeadline(d)
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && !c.publishing.Load() && errors.As(err, &ne) && ne.Timeout() && !c.timedOut.Swap(true) {
		c.s.m.refuse(reasonHandshakeTimeout)
	}
	return n, err
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	return c.Conn.Write(b)
}

func (c *deadlineConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.releaseSlotLocked(c)
		c.s.mu.Unlock()
		c.s.wg.Done()
	})
	return err
}

// newLibLogger routes go-rtmp's logrus output into slog. Only warnings and
// errors are forwarded (at Info: they describe one connection, not the
// server): its Info lines print whole publish commands, stream key
// included, and secrets are never logged. Stack traces are cut off.
func newLibLogger(log *slog.Logger) logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	l.Level = logrus.WarnLevel
	l.AddHook(slogHook{log: log})
	return l
}

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel}
}

func (h slogHook) Fire(e *logrus.Entry) error {
	msg, _, _ := strings.Cut(e.Message, "\n")
	h.log.Info("go-rtmp: " + msg)
	return nil
}
