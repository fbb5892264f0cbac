package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/recording"
)

// restreamCommand implements `parley restream start|stop|status --room R`
// through the running server's admin API. The RTMP URL (with the
// platform's stream key) comes from --url or, to keep it out of shell
// history and the process list, RESTREAM_URL; it is never printed.
func restreamCommand(ctx context.Context, args, environ []string, stdout io.Writer) error {
	const want = "restream: want `restream start --room R [--url rtmp://...]`, `restream stop --room R` or `restream status --room R`"
	if len(args) == 0 || !slices.Contains([]string{"start", "stop", "status"}, args[0]) {
		return errors.New(want)
	}
	fs := flag.NewFlagSet("restream "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	room := fs.String("room", "", "room name")
	rtmpURL := fs.String("url", "", "RTMP URL with the stream key (default: RESTREAM_URL)")
	server := fs.String("server", "", "the server's base URL (default: from signaling.listen)")
	keyID := fs.String("key", "", "API key id (default: the first configured key)")
	configFile := fs.String("config", "", "configuration file holding signaling.api_keys")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("restream %s: %w", args[0], err)
	}
	if *room == "" {
		return fmt.Errorf("restream %s: --room is required", args[0])
	}
	if args[0] == "start" && *rtmpURL == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "RESTREAM_URL="); ok {
				*rtmpURL = v
			}
		}
	}
	if args[0] == "start" {
		// Checked here too, so a typo is told before any request.
		if _, err := recording.ParseRestreamURL(*rtmpURL); err != nil {
			return fmt.Errorf("restream start: --url or RESTREAM_URL: %w", err)
		}
	}
	cfg, _, err := loadConfig(configArgs(*configFile), environ)
	if err != nil {
		return err
	}
	id, secret, err := pickAPIKey(cfg, *keyID)
	if err != nil {
		return fmt.Errorf("restream: %w", err)
	}
	base := *server
	if base == "" {
		base = localURL(cfg)
	}
	c := adminClient{base: strings.TrimRight(base, "/"), id: id, secret: secret}
	path := "/api/admin/rooms/" + url.PathEscape(*room) + "/restream"
	var state struct {
		Active bool  `json:"active"`
		Since  int64 `json:"since"`
		By     *struct {
			Identity string `json:"identity"`
		} `json:"by"`
	}
	switch args[0] {
	case "start":
		if err := c.call(ctx, http.MethodPost, path, map[string]string{"url": *rtmpURL}, &state); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restream of %s started\n", *room)
	case "stop":
		if err := c.call(ctx, http.MethodDelete, path, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restream of %s stopped\n", *room)
	default:
		if err := c.call(ctx, http.MethodGet, path, nil, &state); err != nil {
			return err
		}
		if !state.Active {
			fmt.Fprintf(stdout, "%s: not live\n", *room)
			return nil
		}
		by := ""
		if state.By != nil {
			by = " by " + state.By.Identity
		}
		fmt.Fprintf(stdout, "%s: live since %s%s\n", *room, time.UnixMilli(state.Since).UTC().Format(time.RFC3339), by)
	}
	return nil
}
