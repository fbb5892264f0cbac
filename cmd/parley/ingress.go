package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/parleyhq/parley/ingest"
)

// ingressCommand implements `parley ingress create|list|revoke`: stream
// keys for OBS, kept where the server keeps them: the data directory's
// ingress.db, which the running server reads (SQLite WAL makes the two
// processes safe together), or PostgreSQL with chat.store: postgres (a
// cluster: every node sees the key).
func ingressCommand(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("ingress: want create, list or revoke")
	}
	fs := flag.NewFlagSet("ingress "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "configuration file (for data_dir and the ports printed)")
	room := fs.String("room", "", "room the stream joins")
	name := fs.String("name", "", "display name of the stream participant")
	identity := fs.String("identity", "", "participant identity (default ingress-<name>)")
	host := fs.String("host", "localhost", "host name OBS uses to reach this server")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("ingress %s: %w", args[0], err)
	}
	cfg, _, err := loadConfig(configArgs(*file), environ)
	if err != nil {
		return err
	}
	ks, err := openIngestKeys(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ingress: %w", err)
	}
	defer func() { _ = ks.Close() }()
	switch args[0] {
	case "create":
		if *room == "" || *name == "" {
			return errors.New("ingress create: --room and --name are required")
		}
		k, err := ks.Create(ctx, ingest.KeyRequest{Room: *room, Name: *name, Identity: *identity})
		if err != nil {
			return fmt.Errorf("ingress create: %w", err)
		}
		_, rtmpPort, _ := net.SplitHostPort(cfg.RTMP.Listen)
		_, httpPort, _ := net.SplitHostPort(cfg.Signaling.Listen)
		scheme := "http"
		if cfg.Signaling.TLSCert != "" {
			scheme = "https"
		}
		fmt.Fprintf(stdout, "id:         %s\nroom:       %s\nname:       %s\nidentity:   %s\n", k.ID, k.Room, k.Name, k.Identity)
		fmt.Fprintf(stdout, "RTMP (OBS Custom service):\n  server:     rtmp://%s:%s/%s\n  stream key: %s\n", *host, rtmpPort, cfg.RTMP.App, k.Secret)
		if cfg.Ingest.WHIP.Enabled {
			fmt.Fprintf(stdout, "WHIP (OBS 30+):\n  server:       %s://%s:%s%s\n  bearer token: %s\n", scheme, *host, httpPort, cfg.Ingest.WHIP.Path, k.Secret)
		}
		if !cfg.RTMP.Enabled {
			fmt.Fprintln(stdout, "note: rtmp.enabled is false in this configuration; RTMP publishes will not be accepted")
		}
		fmt.Fprintln(stdout, "The key is shown only now; revoke it with `parley ingress revoke", k.ID+"`.")
		return nil
	case "list":
		keys, err := ks.List(ctx)
		if err != nil {
			return fmt.Errorf("ingress list: %w", err)
		}
		for _, k := range keys {
			state := "active"
			if k.RevokedAt != nil {
				state = "revoked"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Room, k.Name, k.Identity, state)
		}
		return nil
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("ingress revoke: want one key id (see `parley ingress list`)")
		}
		k, err := ks.Revoke(ctx, strings.TrimSpace(fs.Arg(0)))
		if err != nil {
			return fmt.Errorf("ingress revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked %s (%s in %s)\n", k.ID, k.Name, k.Room)
		return nil
	}
	return fmt.Errorf("ingress: unknown subcommand %q", args[0])
}
