package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
)

// tokenCommand implements `parley token create`: it signs an access token
// with an API key from the configuration, for operators and scripts.
func tokenCommand(args, environ []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("token: want `token create --room R --identity I`")
	}
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	room := fs.String("room", "", "room the token admits to (* for all rooms, admin tokens only; empty for a chat-only token)")
	identity := fs.String("identity", "", "unique user identity")
	name := fs.String("name", "", "display name")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	grants := fs.String("grant", "publish,subscribe,chat", "comma-separated grants: publish, subscribe, chat, admin, moderate")
	keyID := fs.String("key", "", "API key id to sign with (default: the only or first configured key)")
	configFile := fs.String("config", "", "configuration file holding signaling.api_keys")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	if *identity == "" {
		return errors.New("token create: --identity is required")
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return errors.New("token create: --ttl must be between 1s and 720h")
	}
	var cfgArgs []string
	if *configFile != "" {
		cfgArgs = []string{"--config", *configFile}
	}
	cfg, _, err := loadConfig(cfgArgs, environ)
	if err != nil {
		return err
	}
	if len(cfg.Signaling.APIKeys) == 0 {
		return errors.New("token create: no API keys configured (signaling.api_keys in --config FILE or PARLEY_SIGNALING_API_KEYS=key=secret)")
	}
	keys, err := auth.NewKeySet(cfg.Signaling.APIKeys)
	if err != nil {
		return fmt.Errorf("signaling.api_keys: %w", err)
	}
	kid := *keyID
	if kid == "" {
		ids := make([]string, 0, len(cfg.Signaling.APIKeys))
		for id := range cfg.Signaling.APIKeys {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		kid = ids[0]
	}
	g, err := auth.ParseGrants(strings.Split(*grants, ","))
	if err != nil {
		return fmt.Errorf("token create: --grant: %w", err)
	}
	tok, err := keys.Issue(kid, auth.Claims{Identity: *identity, Name: *name, Room: *room, Grants: g}, *ttl)
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
