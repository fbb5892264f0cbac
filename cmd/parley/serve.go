package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/sqlitestore"
	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/turn"
	"github.com/parleyhq/parley/web"
)

// serveCommand runs every component under one context until a signal
// arrives, then shuts them down together.
func serveCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, res, err := loadConfig(args, environ)
	if err != nil {
		return err
	}
	if len(res.Rest) > 0 {
		return fmt.Errorf("unknown command %q (see parley help)", res.Rest[0])
	}
	logger, err := logging.New(cfg.Log, stderr)
	if err != nil {
		return err
	}
	if cfg.Dev && len(cfg.Signaling.APIKeys) == 0 {
		kid, secret, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		cfg.Signaling.APIKeys = map[string]string{kid: secret}
		// Printed to the terminal, not the log: the operator needs it to
		// mint tokens, and logs must never carry secrets.
		fmt.Fprintf(stdout, "dev mode: generated API key %s and secret %s (valid until Parley stops)\n", kid, secret)
	}
	if err := ensureTURNSecret(&cfg, stdout); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	keys, err := auth.NewKeySet(cfg.Signaling.APIKeys)
	if err != nil {
		return fmt.Errorf("signaling.api_keys: %w", err)
	}
	media, err := sfu.New(cfg.SFU, sfu.Deps{Logger: logger.With("component", "sfu"), Registry: reg})
	if err != nil {
		return fmt.Errorf("sfu: %w", err)
	}
	routes := map[string]http.Handler{}
	adminRoutes := map[string]http.Handler{}
	var ice signaling.ICEServerProvider
	var turnSrv *turn.Server
	if cfg.TURN.Enabled {
		turnSrv, err = turn.New(cfg.TURN, turn.Deps{Logger: logger.With("component", "turn"), Registerer: reg})
		if err != nil {
			return fmt.Errorf("turn: %w", err)
		}
		ice = turnICE{turnSrv}
		routes["/api/turn/credentials"] = turnSrv.CredentialsHandler(turnAuthorizer(keys, logger.With("component", "turn")))
	}
	store, err := sqlitestore.Open(ctx, cfg.Chat.DatabasePath(), sqlitestore.OptionsFromConfig(cfg.Chat))
	if err != nil {
		return fmt.Errorf("chat store %s: %w", cfg.Chat.DatabasePath(), err)
	}
	// Closed after every component has stopped: signaling acks messages
	// only after durable writes, so the store must outlive it.
	defer store.Close()
	chatSvc, err := chat.New(cfg.Chat, chat.Deps{Store: store, Logger: logger.With("component", "chat"), Registerer: reg})
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	ingestKeys, err := ingest.OpenKeyStore(ctx, ingest.KeyStorePath(cfg.DataDir), ingest.KeyStoreOptions{})
	if err != nil {
		return fmt.Errorf("ingest keys: %w", err)
	}
	defer ingestKeys.Close()
	// The room directory comes first: ingest puts its streams in rooms,
	// signaling its participants.
	dir := rooms.New(rooms.Config{MaxParticipants: cfg.Signaling.MaxParticipantsPerRoom}, logger.With("component", "rooms"))
	ingestSvc, err := ingest.New(cfg.Ingest, ingest.Deps{Media: media, Keys: ingestKeys, Directory: dir, Logger: logger.With("component", "ingest"), Registerer: reg})
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if cfg.Ingest.WHIP.Enabled {
		routes[cfg.Ingest.WHIP.Path] = ingestSvc.WHIPHandler()
		routes[cfg.Ingest.WHIP.Path+"/"] = ingestSvc.WHIPHandler()
	}
	// KeysHandler's own check is signaling's admin auth, already applied.
	adminRoutes[ingest.KeysPath] = ingestKeys.KeysHandler(func(*http.Request) bool { return true })
	adminRoutes[ingest.KeysPath+"/"] = ingestKeys.KeysHandler(func(*http.Request) bool { return true })
	rtmpSrv, err := rtmp.New(cfg.RTMP, rtmp.Deps{Keys: ingestKeys, Sink: ingestSvc, Logger: logger.With("component", "rtmp"), Registerer: reg})
	if err != nil {
		return fmt.Errorf("rtmp: %w", err)
	}
	sig, err := signaling.New(cfg.Signaling, signaling.Deps{
		Routes:      routes,
		AdminRoutes: adminRoutes,
		Chat:        chatSvc,
		Rooms:       dir,
		Logger:      logger.With("component", "signaling"),
		Registry:    reg,
		Gatherer:    reg,
		Media:       signaling.SFUMedia(media),
		Keys:        keys,
		Web:         web.Handler(),
		ICEServers:  ice,
	})
	if err != nil {
		if turnSrv != nil {
			turnSrv.Close()
		}
		return fmt.Errorf("signaling: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ingestSvc.Run(gctx) })
	g.Go(func() error { return rtmpSrv.Run(gctx) })
	if turnSrv != nil {
		g.Go(func() error { return turnSrv.Run(gctx) })
	}
	g.Go(func() error { return media.Run(gctx) })
	g.Go(func() error { return sig.Run(gctx) })
	g.Go(func() error {
		announce(gctx, sig, cfg, stdout, logger)
		return nil
	})
	err = g.Wait()
	logger.Info("parley stopped", "error", err)
	return err
}

// announce prints where to open Parley once the HTTP listener is up.
func announce(ctx context.Context, sig *signaling.Server, cfg Config, stdout io.Writer, logger *slog.Logger) {
	addr := sig.WaitAddr(ctx)
	if addr == nil {
		return
	}
	scheme := "http"
	if cfg.Signaling.TLSCert != "" {
		scheme = "https"
	}
	host := "localhost"
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	port := addr.(*net.TCPAddr).Port
	fmt.Fprintf(stdout, "Parley is up: open %s://%s:%d/ (media on UDP %d, ICE-TCP %d)\n", scheme, host, port, cfg.SFU.UDPPort, cfg.SFU.TCPPort)
	ids := make([]string, 0, len(cfg.Signaling.APIKeys))
	for id := range cfg.Signaling.APIKeys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	logger.Info("listening", "http", addr.String(), "udp", cfg.SFU.UDPPort, "ice_tcp", cfg.SFU.TCPPort, "dev", cfg.Dev, "api_keys", ids)
}
