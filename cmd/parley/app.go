package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/pgstore"
	"github.com/parleyhq/parley/chat/sqlitestore"
	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/turn"
	"github.com/parleyhq/parley/web"
)

// app is Parley's composition root: every component, built in dependency
// order by buildApp and run together by Run.
type app struct {
	sig *signaling.Server // announce waits for its listener
	// drain runs before the components stop on SIGTERM (cluster mode:
	// cluster.Drainer.Drain); nil on a single node.
	drain   func(ctx context.Context)
	runs    []runEntry   // started together by Run
	cleanup cleanupStack // unwound by Close, or by a failed buildApp
}

// runner is what every long-lived component has (ARCHITECTURE: Run
// returns only after its goroutines exit).
type runner interface {
	Run(ctx context.Context) error
}

type runEntry struct {
	name string
	r    runner
}

// add registers a component buildApp made: its Run joins Run's errgroup,
// and if it holds resources from the moment it is built (the SFU's and
// TURN's sockets) its Close joins the cleanup stack, so a later failure
// in buildApp and the end of Run both release them. Such a Close must be
// safe after Run returned.
func (a *app) add(name string, c runner) {
	if cl, ok := c.(io.Closer); ok {
		a.cleanup.push(name, cl)
	}
	a.runs = append(a.runs, runEntry{name: name, r: c})
}

// own registers something without a Run that must be closed once every
// component has stopped, such as a database the components write to.
func (a *app) own(name string, c io.Closer) { a.cleanup.push(name, c) }

// buildApp builds every component from cfg. Anything that fails undoes
// what was built before it (sockets closed, databases closed), so a
// failed start leaves no socket bound and no goroutine running. Adding a
// component is its New, its error check, and one a.add or a.own.
func buildApp(ctx context.Context, cfg Config, log *slog.Logger) (_ *app, err error) {
	a := &app{}
	defer func() {
		if err == nil {
			return
		}
		if cerr := a.cleanup.unwind(); cerr != nil {
			log.Warn("cleanup after a failed start", "error", cerr)
		}
	}()
	logFor := func(component string) *slog.Logger { return log.With("component", component) }
	registry := prometheus.NewRegistry()
	// In a cluster every metric carries the node's id, so that the
	// series of several nodes stay apart wherever they are collected.
	var reg prometheus.Registerer = registry
	if cfg.Cluster.Enabled() {
		node, err := cfg.Cluster.NodeName()
		if err != nil {
			return nil, err
		}
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": node}, registry)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	keys, err := auth.NewKeySet(cfg.Signaling.APIKeys)
	if err != nil {
		return nil, fmt.Errorf("signaling.api_keys: %w", err)
	}
	routes, adminRoutes := map[string]http.Handler{}, map[string]http.Handler{}

	media, err := sfu.New(cfg.SFU, sfu.Deps{Logger: logFor("sfu"), Registry: reg})
	if err != nil {
		return nil, fmt.Errorf("sfu: %w", err)
	}
	a.add("sfu", media)
	var ice signaling.ICEServerProvider
	if cfg.TURN.Enabled {
		turnSrv, err := turn.New(cfg.TURN, turn.Deps{Logger: logFor("turn"), Registerer: reg})
		if err != nil {
			return nil, fmt.Errorf("turn: %w", err)
		}
		a.add("turn", turnSrv)
		ice = turnICE{turnSrv}
		routes["/api/turn/credentials"] = turnSrv.CredentialsHandler(turnAuthorizer(keys, logFor("turn")))
	}
	store, err := openChatStore(ctx, cfg.Chat)
	if err != nil {
		return nil, err
	}
	// Closed after every component has stopped: signaling acks messages
	// only after durable writes, so the store must outlive it.
	a.own("chat store", store)
	// External services /healthz reports (the embedded SQLite has none).
	health := map[string]func(context.Context) error{}
	if pg, ok := store.(*pgstore.Store); ok {
		health["postgres"] = pg.Ping
	}
	chatSvc, err := chat.New(cfg.Chat, chat.Deps{Store: store, Logger: logFor("chat"), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	ingestKeys, err := openIngestKeys(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.own("ingest keys", ingestKeys)
	// The room directory comes first: ingest puts its streams in rooms,
	// signaling its participants.
	dir := rooms.New(rooms.Config{MaxParticipants: cfg.Signaling.MaxParticipantsPerRoom}, logFor("rooms"))
	var cp *clusterParts
	if cfg.Cluster.Enabled() {
		if cp, err = buildCluster(ctx, a, cfg.Cluster, dir, logFor("cluster")); err != nil {
			return nil, err
		}
		health["redis"] = cp.node.Ping
	}
	ingestDeps := ingest.Deps{Media: media, Keys: ingestKeys, Directory: dir, Logger: logFor("ingest"), Registerer: reg}
	if cp != nil {
		// An ingest stream goes to the node that hosts its room.
		ingestDeps.Placer = placer{cp.node}
	}
	ingestSvc, err := ingest.New(cfg.Ingest, ingestDeps)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	a.add("ingest", ingestSvc)
	ingestRoutes(cfg.Ingest, ingestSvc, ingestKeys, routes, adminRoutes)
	rtmpSrv, err := rtmp.New(cfg.RTMP, rtmp.Deps{Keys: ingestKeys, Sink: ingestSvc, Logger: logFor("rtmp"), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("rtmp: %w", err)
	}
	a.add("rtmp", rtmpSrv)
	var guestKey []byte
	if cfg.Signaling.DevMode {
		if guestKey, err = loadGuestKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	recordingDeps, err := openRecordings(cfg, media, logFor("recording"), a)
	if err != nil {
		return nil, err
	}
	sigDeps := signaling.Deps{
		Recording:   recordingDeps,
		GuestKey:    guestKey,
		Routes:      routes,
		AdminRoutes: adminRoutes,
		Chat:        chatSvc,
		Rooms:       dir,
		Logger:      logFor("signaling"),
		Registry:    reg,
		Gatherer:    registry,
		Media:       signaling.SFUMedia(media),
		Keys:        keys,
		Web:         web.Handler(),
		ICEServers:  ice,
		Health:      health,
	}
	if cp != nil {
		sigDeps.Placer, sigDeps.Relay, sigDeps.Peers = placer{cp.node}, cp.bus, placer{cp.node}
		sigDeps.Presence = presenceView{cp.presence}
		sigDeps.RelayJoins = cfg.Cluster.RelaySignaling
	}
	sig, err := signaling.New(cfg.Signaling, sigDeps)
	if cp != nil {
		cp.sig = sig
	}
	if err != nil {
		return nil, fmt.Errorf("signaling: %w", err)
	}
	a.add("signaling", sig)
	a.sig = sig
	return a, nil
}

// ingestRoutes hands ingest's HTTP endpoints to signaling, which owns
// the listener: WHIP publicly, stream keys behind the admin check.
func ingestRoutes(cfg ingest.Config, svc *ingest.Service, keys ingest.StreamKeys, routes, adminRoutes map[string]http.Handler) {
	if cfg.WHIP.Enabled {
		routes[cfg.WHIP.Path] = svc.WHIPHandler()
		routes[cfg.WHIP.Path+"/"] = svc.WHIPHandler()
	}
	// KeysHandler's own check is signaling's admin auth, already applied.
	adminRoutes[ingest.KeysPath] = ingest.NewKeysHandler(keys, func(*http.Request) bool { return true })
	adminRoutes[ingest.KeysPath+"/"] = ingest.NewKeysHandler(keys, func(*http.Request) bool { return true })
	adminRoutes[ingest.StreamsPath] = svc.StreamsHandler()
}

// openIngestKeys opens the stream-key store: with chat.store: postgres
// the keys live in that database (every node of a cluster sees the same
// keys and revocations), otherwise in the data directory's ingress.db.
func openIngestKeys(ctx context.Context, cfg Config) (ingest.StreamKeys, error) {
	if cfg.Chat.Store == chat.StorePostgres {
		keys, err := ingest.OpenPGKeyStore(ctx, cfg.Chat.PostgresURL, ingest.PGKeyStoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("ingest keys: %w", err) // names host and database, never the URL
		}
		return keys, nil
	}
	keys, err := ingest.OpenKeyStore(ctx, ingest.KeyStorePath(cfg.DataDir), ingest.KeyStoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("ingest keys: %w", err)
	}
	return keys, nil
}

// Run runs every component until ctx ends or one of them fails (which
// stops the others), then closes what they were built on. It returns the
// first component error joined with any close error. Call Run or Close,
// once.
func (a *app) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, e := range a.runs {
		g.Go(func() error { return e.r.Run(gctx) })
	}
	return errors.Join(g.Wait(), a.Close())
}

// Close releases everything buildApp opened, for a caller that built the
// app but will not run it; Run calls it itself.
func (a *app) Close() error { return a.cleanup.unwind() }

// openChatStore opens the store chat.store names. Errors name the SQLite
// file or the PostgreSQL URL without its password.
func openChatStore(ctx context.Context, c chat.Config) (chat.Store, error) {
	if c.Store == chat.StorePostgres {
		store, err := pgstore.Open(ctx, c.PostgresURL, pgstore.OptionsFromConfig(c))
		if err != nil {
			return nil, fmt.Errorf("chat store: %w", err) // pgstore's error names the redacted URL
		}
		return store, nil
	}
	store, err := sqlitestore.Open(ctx, c.DatabasePath(), sqlitestore.OptionsFromConfig(c))
	if err != nil {
		return nil, fmt.Errorf("chat store %s: %w", c.DatabasePath(), err)
	}
	return store, nil
}
