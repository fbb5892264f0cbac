// Package signaling is Parley's front door: the HTTP server, the WebSocket
// protocol of docs/protocol.md, rooms and participants as users see them,
// token checks, and negotiation with the SFU through the Media interface.
package signaling

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/peraddr"
	"github.com/parleyhq/parley/internal/wsbatch"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// Deps are the collaborators a Server needs.
type Deps struct {
	Logger   *slog.Logger          // nil: discard
	Registry prometheus.Registerer // nil: metrics are not registered
	Gatherer prometheus.Gatherer   // serves /metrics; nil: /metrics is 404
	Media    Media                 // required
	Keys     *auth.KeySet          // nil: built from Config.APIKeys
	Web      http.Handler          // the web client; nil: 404 for non-API paths
	// ICEServers is optional; without it clients get no ICE servers.
	ICEServers ICEServerProvider
	// Chat enables chat, presence and call invitations; nil: those
	// messages are answered with error "unavailable".
	Chat *chat.Service
	// Routes are other components' HTTP endpoints (pattern -> handler),
	// such as TURN credentials or WHIP, mounted before the catch-all that
	// answers unknown /api/ paths with 404. They do their own auth.
	Routes map[string]http.Handler
	// Rooms is the room directory, shared with ingest; nil: the server
	// makes its own.
	Rooms *rooms.Directory
	// AdminRoutes are other components' admin endpoints; signaling puts
	// its admin authentication in front (API key or an admin token valid
	// for every room).
	AdminRoutes map[string]http.Handler
	// GuestKey signs dev-mode guest credentials (guest.go); kept across
	// restarts, guests keep their identity. Shorter than 32 bytes or nil:
	// a random key for this process.
	GuestKey []byte
	// Health are the external services this node needs (name -> check),
	// such as the chat store's PostgreSQL; /healthz runs them.
	Health map[string]func(context.Context) error
	// Recording turns meeting recording on (recording.go); nil: off.
	Recording *RecordingDeps
	// Placer and Relay are cluster mode's (cluster.go); nil on a single
	// node.
	Placer RoomPlacer
	Relay  ChatRelay
	// Presence merges presence over the nodes (presence_cluster.go); set
	// with Relay in cluster mode, nil on a single node.
	Presence ClusterPresence
	// Peers lets the admin API act across the cluster (admin_cluster.go);
	// nil on a single node.
	Peers ClusterPeers
	// RelayJoins relays the signaling of a join whose room another node
	// hosts to that node (join_relay.go) instead of answering wrong_node.
	RelayJoins bool
}

// Guest tokens (dev mode) per second for the whole server, with a burst
// that lets a room's worth of people join at once.
const (
	devTokensPerSecond = 10
	devTokenBurst      = 50
)

// Server is the signaling HTTP + WebSocket server.
type Server struct {
	// batchBufs lends write-batch buffers to connections (internal/wsbatch).
	batchBufs *sync.Pool
	// devTokens bounds guest tokens minted by POST /api/dev/token.
	devTokens *rate.Limiter
	cfg       Config
	log       *slog.Logger
	media     Media
	keys      *auth.KeySet
	ice       ICEServerProvider
	chat      *chat.Service
	hub       *hub
	calls     *callTable
	metrics   *metrics
	hooks     testHooks
	edge      *edge // limits before handlers run (edge.go)

	// baseCtx bounds chat store calls; it ends when Run has finished, so
	// a write that started before shutdown still completes and is acked.
	baseCtx    context.Context
	baseCancel context.CancelFunc
	handler    http.Handler
	origins    map[string]bool
	upgr       *websocket.Upgrader

	dir *rooms.Directory
	// removals refuses rejoins with tokens older than an admin removal.
	removals *removals
	guestKey []byte
	health   map[string]func(context.Context) error // health.go
	seen     *seenIdentities                        // known.go
	// mod is the rooms' moderation: settings, lobby, bans (moderation.go).
	mod *moderator
	// rec runs meeting recordings (recording.go); nil when off.
	rec *recorder
	// rst runs live restreams (restream.go); nil when recording is off.
	rst *restreamer
	// placer says which node hosts a room (cluster.go); nil: all here.
	placer RoomPlacer
	// relayJoins: join_relay.go.
	relayJoins bool
	// peers are the other nodes, for the admin API (admin_cluster.go).
	peers ClusterPeers
	// clientStats keeps the call clients' getStats() summaries (client_stats.go).
	clientStats *clientStats
	// cpres is cluster-wide presence (presence_cluster.go); nil on a
	// single node.
	cpres *clusterPresence
	// ccalls rings and answers calls across nodes (call_cluster.go); nil
	// on a single node.
	ccalls *clusterCalls
	// refill repairs a cluster bus outage (cluster_refill.go).
	refill *ClusterRefill

	mu           sync.Mutex
	conns        map[*wsConn]struct{}
	shuttingDown bool
	addr         net.Addr
	listening    chan struct{} // closed once addr is set

	wg      sync.WaitGroup // one per WebSocket connection
	started atomic.Bool
}

// New validates cfg and builds a Server; nothing listens until Run.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Media == nil {
		return nil, errors.New("signaling: Deps.Media is required")
	}
	keys := deps.Keys
	if keys == nil {
		var err error
		if keys, err = auth.NewKeySet(cfg.APIKeys); err != nil {
			return nil, fmt.Errorf("signaling.api_keys: %w", err)
		}
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := deps.Rooms
	if dir == nil {
		dir = rooms.New(rooms.Config{MaxParticipants: cfg.MaxParticipantsPerRoom}, log.With("component", "rooms"))
	}
	m, err := newMetrics(deps.Registry, dir)
	if err != nil {
		return nil, err
	}
	edge, err := newEdge(cfg, deps.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		edge:       edge,
		batchBufs:  wsbatch.NewBufPool(),
		devTokens:  rate.NewLimiter(devTokensPerSecond, devTokenBurst),
		cfg:        cfg,
		log:        log,
		media:      deps.Media,
		keys:       keys,
		ice:        deps.ICEServers,
		chat:       deps.Chat,
		hub:        newHub(m.sessions),
		dir:        dir,
		removals:   newRemovals(max(cfg.MaxTokenTTL, cfg.TokenTTL, cfg.DevTokenTTL, cfg.CallTokenTTL)),
		metrics:    m,
		guestKey:   newGuestKey(deps.GuestKey),
		health:     deps.Health,
		placer:     deps.Placer,
		relayJoins: deps.RelayJoins && deps.Placer != nil,
		peers:      deps.Peers,
		seen:       newSeenIdentities(maxSeenIdentities),
		origins:    map[string]bool{},
		conns:      map[*wsConn]struct{}{},

		listening: make(chan struct{}),
	}
	for _, o := range cfg.AllowedOrigins {
		n, _ := normalizeOrigin(o) // validated above
		s.origins[n] = true
	}
	s.upgr = wsbatch.Upgrader(s.originAllowed)
	s.hub.relay = deps.Relay
	if deps.Presence != nil && deps.Relay != nil {
		s.cpres = newClusterPresence(s, deps.Presence)
		s.hub.cpres = s.cpres
		s.ccalls = newClusterCalls(s, deps.Presence.NodeID())
	}
	s.calls = s.newCallTable()
	s.mod = newModerator(s)
	if s.rec, err = newRecorder(s, deps.Recording, deps.Registry); err != nil {
		return nil, err
	}
	if s.clientStats, err = newClientStats(deps.Registry); err != nil {
		return nil, err
	}
	if s.refill, err = newClusterRefill(s, deps.Registry, deps.Relay != nil); err != nil {
		return nil, err
	}
	if s.rst, err = newRestreamer(s, deps.Recording, deps.Registry); err != nil {
		return nil, err
	}
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.handler = s.routes(deps)
	return s, nil
}

func (s *Server) routes(deps Deps) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /healthz", s.handleHealth) // health.go
	if deps.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{}))
	} else {
		mux.Handle("/metrics", http.NotFoundHandler())
	}
	if s.cfg.DevMode {
		mux.HandleFunc("POST /api/dev/token", s.handleDevToken)
	}
	s.adminRoutes(mux)
	for pattern, h := range deps.Routes {
		mux.Handle(pattern, h)
	}
	for pattern, h := range deps.AdminRoutes {
		mux.Handle(pattern, s.admin(func(w http.ResponseWriter, r *http.Request, caller adminCaller) {
			if caller.scope != auth.AllRooms {
				writeJSONError(w, http.StatusForbidden, "forbidden", "this endpoint needs an admin token valid for every room")
				return
			}
			h.ServeHTTP(w, r)
		}))
	}
	// Unknown API paths must not fall through to the web client, which
	// may answer any path with its page.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	web := deps.Web
	if web == nil {
		web = http.NotFoundHandler()
	}
	mux.Handle("/", web)
	return s.edge.wrap(mux, s)
}

// Handler returns every route, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the listening address once Run has started listening, else nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// WaitAddr blocks until Run is listening and returns the address, or
// returns nil if ctx ends first (for example because Run failed).
func (s *Server) WaitAddr(ctx context.Context) net.Addr {
	select {
	case <-s.listening:
		return s.Addr()
	case <-ctx.Done():
		return nil
	}
}

// Run listens on cfg.Listen and serves there (see Serve).
func (s *Server) Run(ctx context.Context) error {
	// Load the certificate before listening, so a bad file fails start
	// with its key name and nothing was bound.
	tlsConf, err := s.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("signaling.listen %s: %w", s.cfg.Listen, err)
	}
	return s.serve(ctx, ln, tlsConf)
}

// Serve serves HTTP and WebSockets on ln (TLS when configured) until ctx
// ends, then says bye to every client, closes them and returns after all
// connection goroutines have exited. It closes ln. Tests hand it an
// in-memory listener to run the server on a fake clock.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tlsConf, err := s.tlsConfig()
	if err != nil {
		_ = ln.Close()
		return err
	}
	return s.serve(ctx, ln, tlsConf)
}

// tlsConfig loads the configured certificate; nil without TLS.
func (s *Server) tlsConfig() (*tls.Config, error) {
	if s.cfg.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("signaling.tls_cert/tls_key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (s *Server) serve(ctx context.Context, ln net.Listener, tlsConf *tls.Config) error {
	if !s.started.CompareAndSwap(false, true) {
		_ = ln.Close()
		return errors.New("signaling: Run or Serve called twice")
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	close(s.listening)
	tlsOn := tlsConf != nil
	s.log.Info("signaling listening", "addr", ln.Addr().String(), "tls", tlsOn)

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tlsConf,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() {
		if tlsOn {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("signaling serve: %w", err)
		serveErr <- nil // keep the later receive from blocking
	}
	s.calls.shutdown()
	s.shutdownConns()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Debug("serve ended", "err", err)
	}
	s.waitConns()
	s.rec.close()
	s.rst.close()
	s.calls.wait()
	s.hub.close()
	s.hub.wait()
	s.baseCancel()
	return runErr
}

// shutdownConns stops new WebSocket sessions and tells every client.
func (s *Server) shutdownConns() {
	s.mu.Lock()
	s.shuttingDown = true
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.sendBye(proto.ByeShutdown)
	}
}

// waitConns waits for connection goroutines, cutting sockets that do not
// finish their close handshake within ShutdownTimeout.
func (s *Server) waitConns() {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.ws.NetConn().Close()
	}
	s.mu.Unlock()
	<-done
}

// originAllowed accepts the server's own host and configured origins.
// Requests without Origin come from non-browser clients, which cannot be
// used for cross-site attacks, so they pass.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	n, err := normalizeOrigin(origin)
	return err == nil && s.origins[n]
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		s.log.Info("websocket origin refused", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !s.devHostAllowed(w, r) {
		return
	}
	slot := s.admitUnjoined(w, r) // counts until the socket joins (addrcap.go)
	if slot == nil {
		return
	}
	defer slot.releaseUnlessBound()
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()

	ws, _, err := wsbatch.Upgrade(s.upgr, w, r, s.cfg.WriteTimeout, s.batchBufs)
	if err != nil {
		// Upgrade already answered with an HTTP error.
		s.log.Debug("websocket upgrade failed", "err", err)
		s.wg.Done()
		return
	}
	c := newWSConn(s, ws, s.log.With("remote", r.RemoteAddr))
	c.client = peraddr.FromRequest(r)
	c.relayedBy = r.Header.Get(relayedByHeader)
	slot.bind(c)
	// The connection runs on a fresh goroutine and this handler returns:
	// net/http keeps its per-connection request state and buffers (about
	// 12 KiB) for as long as the handler runs, even after a hijack.
	go func() {
		defer slot.release()
		s.runConn(c)
	}()
}

// runConn serves one upgraded connection until it ends.
func (s *Server) runConn(c *wsConn) {
	defer s.wg.Done()
	s.mu.Lock()
	s.conns[c] = struct{}{}
	late := s.shuttingDown
	s.mu.Unlock()
	s.metrics.connections.Inc()
	if late {
		c.sendBye(proto.ByeShutdown)
	}
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.connections.Dec()
}
