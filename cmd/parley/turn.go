package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/turn"
)

// turnCommand implements `parley turn` (TURN alone, for people who want
// only that), `parley turn credentials` and `parley turn check`.
func turnCommand(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "credentials":
			return turnCredentialsCommand(args[1:], environ, stdout)
		case "check":
			return turnCheckCommand(ctx, args[1:], environ, stdout)
		}
	}
	cfg, res, err := loadConfig(args, environ)
	if err != nil {
		return err
	}
	if len(res.Rest) > 0 {
		return fmt.Errorf("turn: unknown subcommand %q (want credentials or check)", res.Rest[0])
	}
	cfg.TURN.Enabled = true
	if os.Getenv("GOGC") == "" {
		// ChannelData relays allocate nothing, but what turn leaves to
		// pion (Send and Data indications, TLS clients) allocates per
		// packet; a standalone TURN process holds little live memory, so
		// trading heap for fewer collections is cheap (it cut pion's TCP
		// relay CPU by a quarter, docs/benchmarks.md). An operator's GOGC
		// still wins.
		debug.SetGCPercent(400)
	}
	if err := ensureTURNSecret(&cfg, stdout); err != nil {
		return err
	}
	if err := cfg.TURN.Validate(); err != nil {
		return err
	}
	logger, err := logging.New(cfg.Log, stderr)
	if err != nil {
		return err
	}
	srv, err := turn.New(cfg.TURN, turn.Deps{Logger: logger.With("component", "turn")})
	if err != nil {
		return fmt.Errorf("turn: %w", err)
	}
	a := srv.Addrs()
	fmt.Fprintf(stdout, "Parley TURN is up: udp %v tcp %v tls %v realm %q\n", a.UDP, a.TCP, a.TLS, cfg.TURN.Realm)
	return srv.Run(ctx)
}

// ensureTURNSecret gives dev mode a working TURN without configuration:
// a random shared secret, printed to the terminal (never logged) so the
// operator can hand credentials to another app.
func ensureTURNSecret(cfg *Config, stdout io.Writer) error {
	if !cfg.TURN.Enabled || len(cfg.TURN.SharedSecrets) > 0 || len(cfg.TURN.Users) > 0 {
		return nil
	}
	if !cfg.Dev {
		return errors.New("turn.shared_secrets: at least one secret is required when TURN is enabled outside dev mode")
	}
	_, secret, err := auth.GenerateKey()
	if err != nil {
		return err
	}
	cfg.TURN.SharedSecrets = []string{secret}
	fmt.Fprintf(stdout, "dev mode: generated TURN shared secret %s (valid until Parley stops)\n", secret)
	return nil
}

func turnFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.String("config", "", "configuration file with turn.shared_secrets")
}

func configArgs(file string) []string {
	if file == "" {
		return nil
	}
	return []string{"--config", file}
}

func turnCredentialsCommand(args, environ []string, stdout io.Writer) error {
	fs, file := turnFlags("turn credentials")
	user := fs.String("user", "", "user name embedded in the credential")
	ttl := fs.Duration("ttl", time.Hour, "credential lifetime")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("turn credentials: %w", err)
	}
	if *user == "" || strings.Contains(*user, ":") {
		return errors.New("turn credentials: --user is required and must not contain ':'")
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return errors.New("turn credentials: --ttl must be between 1s and 720h")
	}
	cfg, _, err := loadConfig(configArgs(*file), environ)
	if err != nil {
		return err
	}
	ice, err := cfg.TURN.ICEServer(*user, *ttl, time.Now())
	if errors.Is(err, turn.ErrNoSecret) {
		return errors.New("turn credentials: no turn.shared_secrets configured (--config FILE or PARLEY_TURN_SHARED_SECRETS)")
	}
	if err != nil {
		return fmt.Errorf("turn credentials: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(ice)
}

func turnCheckCommand(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs, file := turnFlags("turn check")
	transport := fs.String("transport", "udp", "udp, tcp or tls")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("turn check: %w", err)
	}
	cfg, _, err := loadConfig(configArgs(*file), environ)
	if err != nil {
		return err
	}
	opts, err := cfg.TURN.LocalCheckOptions(*transport)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	report, err := turn.Check(ctx, opts)
	fmt.Fprintln(stdout, report)
	if err != nil {
		return fmt.Errorf("turn check failed: %w", err)
	}
	return nil
}

// turnICE adapts *turn.Server to signaling's ICE server provider, so join
// responses carry short-lived TURN credentials for the identity.
type turnICE struct{ srv *turn.Server }

func (t turnICE) ICEServers(identity string) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range t.srv.ICEServers(identity) {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// turnAuthorizer admits other apps to the credentials endpoint with an
// API key (HTTP Basic, key id and secret; the credential's user comes from
// ?user=) or with any valid Parley access token (the user is its identity).
func turnAuthorizer(keys *auth.KeySet, logger *slog.Logger) func(*http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) {
		if id, secret, ok := r.BasicAuth(); ok {
			if !keys.CheckSecret(id, secret) {
				logger.Info("turn credentials refused: bad API key", "key", id, "remote", r.RemoteAddr)
				return "", false
			}
			user := r.URL.Query().Get("user")
			if user == "" {
				user = id
			}
			if len(user) > 128 || strings.Contains(user, ":") {
				return "", false
			}
			return user, true
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			c, err := keys.Verify(tok)
			if err != nil {
				return "", false
			}
			return c.Identity, true
		}
		return "", false
	}
}
