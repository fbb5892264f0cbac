package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/signaling"
	"github.com/parleyhq/parley/signaling/auth"
)

// serveCommand runs every component under one context until a signal
// arrives, then shuts them down together.
func serveCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, logger, err := serveConfig(args, environ, stdout, stderr)
	if err != nil {
		return err
	}
	a, err := buildApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	// announce is not a component: it only waits for the listener, and
	// stops waiting when the app stops, whether or not it ever listened.
	announceCtx, stopAnnounce := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { announce(announceCtx, a.sig, cfg, stdout, logger) })
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { drainThenStop(ctx, runCtx, a.drain, stopRun, logger) })
	err = a.Run(runCtx)
	stopRun()
	stopAnnounce()
	wg.Wait()
	logger.Info("parley stopped", "error", err)
	return err
}

// drainThenStop stops the app (stopRun) when ctx ends (the first SIGINT
// or SIGTERM). A cluster node drains first (drain: it takes no new rooms
// and lets its calls end, for at most cluster.drain_timeout, then moves
// the rest to other nodes); a second signal cuts the drain short. It
// returns when runCtx ends, whoever ended it.
func drainThenStop(ctx, runCtx context.Context, drain func(context.Context), stopRun context.CancelFunc, log *slog.Logger) {
	select {
	case <-runCtx.Done():
		return
	case <-ctx.Done():
	}
	if drain != nil {
		// Registered after the first signal: only a second one ends it.
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		dctx, cancel := context.WithCancel(runCtx)
		drained := make(chan struct{})
		var watch sync.WaitGroup
		watch.Go(func() {
			select {
			case <-again:
				log.Info("second signal: stopping without waiting for the drain")
				cancel()
			case <-drained:
			}
		})
		drain(dctx)
		close(drained)
		watch.Wait()
		cancel()
		signal.Stop(again)
	}
	stopRun()
}

// serveConfig loads and completes the configuration of the server: the
// dev-mode API key and TURN secret (printed to the terminal, never
// logged), validation, and the data directory.
func serveConfig(args, environ []string, stdout, stderr io.Writer) (Config, *slog.Logger, error) {
	cfg, res, err := loadConfig(args, environ)
	if err != nil {
		return Config{}, nil, err
	}
	if len(res.Rest) > 0 {
		return Config{}, nil, fmt.Errorf("unknown command %q (see parley help)", res.Rest[0])
	}
	logger, err := logging.New(cfg.Log, stderr)
	if err != nil {
		return Config{}, nil, err
	}
	if cfg.Dev && len(cfg.Signaling.APIKeys) == 0 {
		kid, secret, err := auth.GenerateKey()
		if err != nil {
			return Config{}, nil, err
		}
		cfg.Signaling.APIKeys = map[string]string{kid: secret}
		// Printed to the terminal, not the log: the operator needs it to
		// mint tokens, and logs must never carry secrets.
		fmt.Fprintf(stdout, "dev mode: generated API key %s and secret %s (valid until Parley stops)\n", kid, secret)
	}
	if err := ensureTURNSecret(&cfg, stdout); err != nil {
		return Config{}, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return Config{}, nil, fmt.Errorf("data_dir: %w", err)
	}
	return cfg, logger, nil
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
