package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/chat/pgstore"
	"github.com/parleyhq/parley/cluster"
	"github.com/parleyhq/parley/ingest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/turn"
)

// Config is the whole configuration tree; each section belongs to one
// component and is validated by it.
type Config struct {
	Dev       bool             `yaml:"dev" doc:"Development mode: guest tokens from the landing page, loopback ICE candidates, a generated API key when none is configured. On by default only when no config file is given."`
	DataDir   string           `yaml:"data_dir" doc:"Directory for Parley's data (chat database)."`
	Log       logging.Config   `yaml:"log"`
	Signaling signaling.Config `yaml:"signaling"`
	SFU       sfu.Config       `yaml:"sfu"`
	TURN      turn.Config      `yaml:"turn"`
	Chat      chat.Config      `yaml:"chat"`
	RTMP      rtmp.Config      `yaml:"rtmp"`
	Ingest    ingest.Config    `yaml:"ingest"`
	Recording recording.Config `yaml:"recording"`
	Cluster   cluster.Config   `yaml:"cluster"`
}

// DefaultConfig returns every component's defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:   "parley-data",
		Log:       logging.DefaultConfig(),
		Signaling: signaling.DefaultConfig(),
		SFU:       sfu.DefaultConfig(),
		TURN:      turn.DefaultConfig(),
		Chat:      chatDefaults(),
		RTMP:      rtmp.DefaultConfig(),
		Ingest:    ingest.DefaultConfig(),
		Recording: recording.DefaultConfig(),
		Cluster:   cluster.DefaultConfig(),
	}
}

// chatDefaults leaves chat.data_dir empty so it follows data_dir.
func chatDefaults() chat.Config {
	c := chat.DefaultConfig()
	c.DataDir = ""
	return c
}

// Validate checks every section and names the failing key.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	checks := []struct {
		section string
		err     error
	}{
		{"", c.Log.Validate()},
		{"signaling", c.Signaling.Validate()},
		{"sfu", c.SFU.Validate()},
		{"turn", c.TURN.Validate()},
		{"chat", c.Chat.Validate()},
		{"rtmp", c.RTMP.Validate()},
		{"ingest", c.Ingest.Validate()},
		{"recording", c.Recording.Validate()},
		{"cluster", validateCluster(c)}, // cluster.go
	}
	for _, ch := range checks {
		if ch.err == nil {
			continue
		}
		if ch.section == "" || strings.HasPrefix(ch.err.Error(), ch.section+".") {
			return ch.err
		}
		return fmt.Errorf("%s.%w", ch.section, ch.err)
	}
	if !c.Dev && len(c.Signaling.APIKeys) == 0 {
		return errors.New("signaling.api_keys: at least one API key is required outside dev mode (`parley config example` prints a configuration with a fresh one)")
	}
	return nil
}

// loadConfig applies defaults, file, environment and flags. Without a
// config file (neither --config nor PARLEY_CONFIG) Parley starts in dev
// mode, so `go run ./cmd/parley` works on a fresh machine; an explicit
// --dev=false or dev: false still wins.
func loadConfig(args, environ []string) (Config, config.Result, error) {
	cfg := DefaultConfig()
	cfg.Dev = !hasConfigFile(args, environ)
	// `go run ./cmd/parley` with no file accepts OBS streams at once; with
	// a file the operator opts in, so no port opens unasked.
	cfg.RTMP.Enabled = cfg.Dev
	// Recording likewise: a developer can try it at once, an operator
	// decides where meetings go to disk.
	cfg.Recording.Enabled = cfg.Dev
	res, err := config.Load(&cfg, config.Sources{Args: args, Environ: environ})
	if err != nil {
		return cfg, res, err
	}
	if cfg.Chat.DataDir == "" {
		// The chat database lives in Parley's data directory unless the
		// operator points chat elsewhere.
		cfg.Chat.DataDir = cfg.DataDir
	}
	completeCluster(&cfg) // cluster.go
	if cfg.Dev {
		cfg.Signaling.DevMode = true
		cfg.SFU.IncludeLoopback = true
	}
	return cfg, res, nil
}

func hasConfigFile(args, environ []string) bool {
	for _, a := range args {
		if a == "--config" || a == "-config" || strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config=") {
			return true
		}
	}
	return slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, config.EnvPrefix+"CONFIG=") })
}

func configCommand(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("config: want example, check or keys")
	}
	switch args[0] {
	case "example":
		cfg := DefaultConfig()
		// A fresh key pair each time, so the sample is usable as it is and
		// nobody deploys a secret copied from documentation.
		kid, secret, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		cfg.Signaling.APIKeys = map[string]string{kid: secret}
		out, err := config.Example(&cfg, exampleDocs)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, "# Parley configuration. Every key can also be set as PARLEY_<PATH> (dots\n# become underscores) or as a flag --<path>=value.\n")
		fmt.Fprint(stdout, out)
		return nil
	case "check":
		cfg, res, err := loadConfig(args[1:], environ)
		if err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		// The services the configuration depends on must answer too.
		if cfg.Chat.Store == chat.StorePostgres {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := pgstore.Check(cctx, cfg.Chat.PostgresURL)
			cancel()
			if err != nil {
				return fmt.Errorf("chat.postgres_url: %w", err)
			}
			fmt.Fprintf(stdout, "chat store: PostgreSQL %s answers\n", pgstore.Redact(cfg.Chat.PostgresURL))
		}
		if err := checkCluster(ctx, cfg.Cluster, stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "configuration ok (file %q, dev mode %v)\n", res.File, cfg.Dev)
		return nil
	case "keys":
		cfg, _, err := loadConfig(args[1:], environ)
		if err != nil {
			return err
		}
		keys, err := config.Keys(&cfg)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k[0] == "chat.postgres_url" || k[0] == "cluster.redis_url" {
				k[2] = pgstore.Redact(k[2]) // never print the password
			}
			fmt.Fprintf(stdout, "%-40s %-48s %s\n", k[0], k[1], k[2])
		}
		return nil
	}
	return fmt.Errorf("config: unknown subcommand %q", args[0])
}
