package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	pionturn "github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/turn/internal/relay"

	"github.com/parleyhq/parley/internal/logging"
)

// shutdownWait bounds how long Run waits for pion's goroutines to leave
// the closed sockets.
const shutdownWait = 5 * time.Second

// Deps are the server's collaborators.
type Deps struct {
	// Logger receives refusals (rate limited) and lifecycle messages; nil
	// discards.
	Logger *slog.Logger
	// Registerer receives the parley_turn_* metrics; nil skips registration.
	Registerer prometheus.Registerer
	// Now is the clock for credential expiry; nil means time.Now.
	Now func() time.Time
	// Net is the network for listeners and relays; nil means the host's.
	// Tests pass a pion vnet, which carries UDP only: then each UDP
	// address gets one socket and TCP/TLS listeners must be empty.
	Net transport.Net
}

// Server is a running (after Run) TURN server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	auth    *authenticator
	policy  *PeerPolicy
	quotas  *quotas
	tracker *tracker
	gen     *relayGenerator
	fast    *fastPath
	// steer routes reservations across SO_REUSEPORT sockets (steer.go).
	steer *steering
	// tcpBudget and tlsBudget admit client connections (connbudget.go);
	// budgetWake wakes the reaper of unauthenticated ones.
	tcpBudget, tlsBudget *connBudget
	budgetWake           chan struct{}
	// loops serve the UDP sockets and plain TCP clients
	// (internal/relay); none on a vnet or off Linux, where pion's
	// goroutines read the sockets.
	loops      *relay.Loops
	refusalLog *refusalLog
	// sockDeps is what the socket wrappers see of the server.
	sockDeps *relayDeps
	// refusals turn pion's 400 for a refused credential into 401;
	// releases and closes tell why an allocation was deleted.
	refusals addrNotes
	releases addrNotes
	closes   addrNotes

	baseCtx context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	socks   *sockets
	started bool
	closed  bool
}

// ErrAlreadyRun is returned by a second call to Run.
var ErrAlreadyRun = errors.New("turn: Run called twice")

// New validates cfg and binds the listening sockets (so a busy port fails
// here). Nothing is served until Run. Call Close if Run is never called.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validateEnabled(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	policy, err := NewPeerPolicy(cfg.AllowedPeerCIDRs, cfg.DeniedPeerCIDRs)
	if err != nil {
		return nil, fmt.Errorf("turn.allowed_peer_cidrs: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        log,
		now:        now,
		metrics:    m,
		policy:     policy,
		quotas:     newQuotas(cfg.MaxAllocationsPerUser, cfg.MaxAllocations, now),
		tracker:    newTracker(),
		fast:       newFastPath(m.droppedSendFailed),
		steer:      newSteering(),
		refusalLog: newRefusalLog(log, m),
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.budgetWake = make(chan struct{}, 1)
	s.tcpBudget = newConnBudget("tcp", cfg.MaxTCPConnections, cfg, m.conns, s.budgetWake)
	s.tlsBudget = newConnBudget("tls", cfg.MaxTLSConnections, cfg, m.conns, s.budgetWake)
	s.auth = newAuthenticator(cfg, now, s.authFailed)
	if deps.Net == nil {
		loops, err := relay.NewLoops(eventLoops(cfg))
		if err != nil {
			s.cancel()

			return nil, fmt.Errorf("turn: %w", err)
		}
		s.loops = loops
		s.fast.loops = loops
	}
	s.sockDeps = s.relayDeps()
	s.gen = newRelayGenerator(s.sockDeps, cfg, deps.Net)
	socks, err := s.openSockets(context.Background(), cfg, deps.Net)
	if err != nil {
		s.cancel()
		s.loops.Close()

		return nil, err
	}
	s.socks = socks

	return s, nil
}

// Addrs returns the bound listening addresses.
func (s *Server) Addrs() Addrs {
	var a Addrs
	for _, c := range s.socks.udp {
		a.UDP = append(a.UDP, c.LocalAddr())
	}
	for _, l := range s.socks.tcp {
		a.TCP = append(a.TCP, l.Addr())
	}
	for _, l := range s.socks.tls {
		a.TLS = append(a.TLS, l.Addr())
	}

	return a
}

// AllocationCount returns the number of live allocations.
func (s *Server) AllocationCount() int {
	s.quotas.mu.Lock()
	defer s.quotas.mu.Unlock()

	return s.quotas.total
}

// Close releases the sockets of a server whose Run was never called. It is
// safe to call after Run returned.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return nil
	}
	s.closed = true
	s.cancel()
	s.socks.close()
	s.gen.held.closeAll()
	s.loops.Close()

	return nil
}

// Run serves until ctx ends, then closes every listener, relay and client
// connection and returns once pion's goroutines have left them.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()

		return ErrAlreadyRun
	}
	s.started = true
	s.mu.Unlock()

	s.loops.Start()
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		s.reapUnauthenticated(s.baseCtx, []*connBudget{s.tcpBudget, s.tlsBudget}, s.budgetWake)
	}()
	defer func() {
		s.cancel() // ends the reaper on every return path
		<-reaped
	}()
	srv, err := pionturn.NewServer(s.pionConfig())
	if err != nil {
		s.tracker.shutdown()
		s.socks.close()
		s.loops.Close()

		return fmt.Errorf("start turn server: %w", err)
	}
	a := s.Addrs()
	s.log.Info("turn: serving", "udp", len(a.UDP), "tcp", a.TCP, "tls", a.TLS, "realm", s.cfg.Realm)
	<-ctx.Done()

	s.cancel() // wakes relays waiting on the bandwidth cap
	closeErr := srv.Close()
	s.tracker.shutdown()
	s.gen.held.closeAll()
	if busy := s.tracker.wait(shutdownWait); busy > 0 {
		s.log.Warn("turn: sockets still busy after shutdown", "count", busy)
	}
	s.loops.Close()
	if closeErr != nil && !errors.Is(closeErr, net.ErrClosed) {
		s.log.Debug("turn: close", "err", closeErr)
	}

	return nil
}

func (s *Server) pionConfig() pionturn.ServerConfig {
	pc := pionturn.ServerConfig{
		// pion/turn logs some events per packet or per request at Info and
		// Error (a peer without permission, a scanner's failed TLS
		// handshake); the server logs its refusals itself, rate limited.
		LoggerFactory:      logging.PionFactory(s.log, logging.PionOptions{Demote: true}),
		Realm:              s.cfg.Realm,
		AuthHandler:        s.auth.handle,
		QuotaHandler:       s.allowAllocation,
		EventHandler:       s.events(),
		AllocationLifetime: s.cfg.AllocationLifetime,
	}
	for _, c := range s.socks.udp {
		w := &clientPacketConn{PacketConn: c, deps: s.sockDeps}
		s.tracker.add(w, func(tr *tracked) { w.tr = tr })
		s.fast.addUDPListener(w)
		if raw, ok := c.(relay.Socket); ok {
			w.raw = raw
			if err := raw.Attach(w.loopDatagram); err != nil {
				s.log.Error("turn: UDP socket not served", "addr", raw.LocalAddr().String(), "err", err)
			}
		}
		pc.PacketConnConfigs = append(pc.PacketConnConfigs, pionturn.PacketConnConfig{
			PacketConn:            w,
			RelayAddressGenerator: s.gen,
			PermissionHandler:     s.permitPeer,
		})
	}
	for _, l := range s.clientListeners() {
		w := &clientListener{Listener: l.ln, deps: s.sockDeps, budget: l.budget}
		s.tracker.add(w, func(tr *tracked) { w.tr = tr })
		pc.ListenerConfigs = append(pc.ListenerConfigs, pionturn.ListenerConfig{
			Listener:              w,
			RelayAddressGenerator: s.gen,
			PermissionHandler:     s.permitPeer,
		})
	}

	return pc
}

type budgetedListener struct {
	ln     net.Listener
	budget *connBudget
}

// clientListeners pairs the TCP and TLS listeners with their budgets.
func (s *Server) clientListeners() []budgetedListener {
	var ls []budgetedListener
	for _, l := range s.socks.tcp {
		ls = append(ls, budgetedListener{l, s.tcpBudget})
	}
	for _, l := range s.socks.tls {
		ls = append(ls, budgetedListener{l, s.tlsBudget})
	}

	return ls
}

// permitPeer is the PermissionHandler: pion calls it for CreatePermission,
// ChannelBind and Connect. Send indications, ChannelData and inbound peer
// traffic need a permission that only this handler can have granted.
func (s *Server) permitPeer(client net.Addr, peer net.IP) bool {
	ok, reason := s.policy.Check(peer)
	if !ok {
		s.metrics.peerDenials.WithLabelValues(reason).Inc()
		s.logRefusal("turn: peer refused", slog.String("reason", reason),
			slog.String("client", client.String()), slog.String("peer", peer.String()))
	}

	return ok
}

// allowAllocation is the QuotaHandler (pion answers 486 on false).
func (s *Server) allowAllocation(user, _ string, src net.Addr) bool {
	ok, scope := s.quotas.reserve(user, src)
	if !ok {
		s.metrics.quotaRejections.WithLabelValues(scope).Inc()
		s.logRefusal("turn: allocation quota reached", slog.String("scope", scope),
			slog.String("user", user), slog.String("client", src.String()))
	}

	return ok
}

// authFailed counts and logs a refused credential. The username carries
// no secret; the password never reaches this package.
func (s *Server) authFailed(reason, username string, src net.Addr) {
	s.refusals.note(src)
	s.metrics.authFailures.WithLabelValues(reason).Inc()
	s.logRefusal("turn: authentication failed", slog.String("reason", reason),
		slog.String("username", username), slog.String("client", src.String()))
}

func (s *Server) logRefusal(msg string, attrs ...slog.Attr) { s.refusalLog.log(msg, attrs...) }

// relayDeps gathers what the socket wrappers need (relaydeps.go).
func (s *Server) relayDeps() *relayDeps {
	var learn func([]byte)
	if s.auth.wantsRaw() {
		learn = s.auth.learn
	}

	return &relayDeps{
		metrics: s.metrics,
		fast:    s.fast,
		steer:   s.steer,
		answers: newSourceBudget(s.cfg.UnallocatedAnswerRate),
		replies: &replies{
			realm: s.cfg.Realm, slack: unsignedSlack(s.cfg.Realm), auth: s.auth, metrics: s.metrics,
			refusals: &s.refusals, releases: &s.releases, log: s.refusalLog,
		},
		loops:   s.loops,
		tracker: s.tracker,
		closes:  &s.closes,
		log:     s.log,
		learn:   learn,
		ctx:     s.baseCtx,
	}
}

func (s *Server) events() pionturn.EventHandler {
	m := s.metrics

	return pionturn.EventHandler{
		OnAuth: func(src, _ net.Addr, _, username, _, _ string, verdict bool) {
			if !verdict {
				s.authFailed(authBadCredential, username, src)
			}
		},
		OnAllocationCreated: func(src, dst net.Addr, protocol, userID, _ string, relay net.Addr, _ int) {
			s.fast.allocationCreated(src, dst, relay)
			if key, ok := keyOf(src, dst); ok && !key.stream {
				s.steer.allocated(key.client, key.server)
			}
			s.quotas.created(userID, src)
			m.allocationsActive.Inc()
			m.allocationsCreated.Inc()
			s.log.LogAttrs(context.Background(), slog.LevelDebug, "turn: allocation created",
				slog.String("user", userID), slog.String("client", src.String()),
				slog.String("protocol", protocol), slog.String("relay", relay.String()))
		},
		OnAllocationDeleted: func(src, dst net.Addr, _, userID, _ string) {
			s.fast.allocationDeleted(src, dst)
			if key, ok := keyOf(src, dst); ok && !key.stream {
				s.steer.released(key.client, key.server)
			}
			s.quotas.deleted(userID)
			m.allocationsActive.Dec()
			reason := deleteExpired
			switch {
			case s.releases.take(src):
				reason = deleteReleased
			case s.closes.take(src):
				reason = deleteConnClosed
			}
			m.allocationsDeleted.WithLabelValues(reason).Inc()
			s.log.LogAttrs(context.Background(), slog.LevelDebug, "turn: allocation deleted",
				slog.String("user", userID), slog.String("client", src.String()), slog.String("reason", reason))
		},
		OnAllocationError: func(src, _ net.Addr, _, message string) {
			m.requestErrors.Inc()
			s.log.LogAttrs(context.Background(), slog.LevelDebug, "turn: request failed",
				slog.String("client", src.String()), slog.String("err", message))
		},
		OnPermissionCreated: func(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
			s.fast.permissionCreated(src, dst, peer)
			m.permissionsActive.Inc()
			m.permissionsCreated.Inc()
		},
		OnPermissionDeleted: func(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
			s.fast.permissionDeleted(src, dst, peer)
			m.permissionsActive.Dec()
		},
		OnChannelCreated: func(src, dst net.Addr, _, _, _ string, _, peer net.Addr, number uint16) {
			s.fast.channelCreated(src, dst, peer, number)
			m.channelsActive.Inc()
		},
		OnChannelDeleted: func(src, dst net.Addr, _, _, _ string, _, peer net.Addr, number uint16) {
			s.fast.channelDeleted(src, dst, peer, number)
			m.channelsActive.Dec()
		},
	}
}
