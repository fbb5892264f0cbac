package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleyhq/parley/recording"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling"
)

func init() {
	for k, v := range map[string]string{
		"recording":                           "Meeting recording: each published track to its own file (Opus to Ogg, VP8 to WebM) with a JSON manifest. On by default in dev mode only.",
		"recording.enabled":                   "Let moderators (recording_start) and the admin API record meetings.",
		"recording.dir":                       "Where recordings go (<dir>/<room>/<id>/); empty means <data_dir>/recordings.",
		"recording.max_total_bytes":           "Disk budget of all recordings together: none starts once it is spent, a running one stops when it is reached.",
		"recording.max_recording_bytes":       "Size at which one recording stops (the room is told).",
		"recording.sync_interval":             "How often recordings' files are flushed and fsynced: at most this much is lost to a power cut.",
		"recording.stop_when_empty":           "Stop a recording once its room has been empty this long (everyone left, or the meeting ended); 0 never.",
		"recording.restream_allowed_networks": "CIDRs a restream may be sent to although they are special-purpose (loopback, private, link-local): by default a moderator can point a restream at public addresses only.",
		"recording.compose":                   "After each recording, make one MP4 (H.264 + AAC: cameras in a grid or the shared screen large, audio mixed) with ffmpeg, one recording at a time.",
	} {
		exampleDocs[k] = v
	}
}

// openRecordings opens the recordings store when recording is enabled
// (nil otherwise) and ties it to the SFU's taps. The store is closed
// after the components stopped: running recordings end "server shutting
// down", their files finished.
func openRecordings(cfg Config, media *sfu.SFU, log *slog.Logger, a *app) (*signaling.RecordingDeps, error) {
	if !cfg.Recording.Enabled {
		return nil, nil //nolint:nilnil // recording is off
	}
	store, err := recording.Open(cfg.Recording, filepath.Join(cfg.DataDir, "recordings"), log)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	a.own("recordings", store)
	return &signaling.RecordingDeps{
		Store: store,
		Attach: func(room string, sink sfu.TrackSink) (io.Closer, error) {
			return media.AttachSink(room, sink)
		},
	}, nil
}

// recordingCommand implements `parley recording list|start|stop`
// through the running server's admin API, authenticated with an API key
// from the configuration.
func recordingCommand(ctx context.Context, args, environ []string, stdout io.Writer) error {
	const want = "recording: want `recording list [--room R]`, `recording start --room R` or `recording stop --room R`"
	if len(args) == 0 || !slices.Contains([]string{"list", "start", "stop"}, args[0]) {
		return errors.New(want)
	}
	fs := flag.NewFlagSet("recording "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	room := fs.String("room", "", "room name")
	server := fs.String("server", "", "the server's base URL (default: from signaling.listen)")
	keyID := fs.String("key", "", "API key id (default: the first configured key)")
	configFile := fs.String("config", "", "configuration file holding signaling.api_keys")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("recording %s: %w", args[0], err)
	}
	if args[0] != "list" && *room == "" {
		return fmt.Errorf("recording %s: --room is required", args[0])
	}
	cfg, _, err := loadConfig(configArgs(*configFile), environ)
	if err != nil {
		return err
	}
	id, secret, err := pickAPIKey(cfg, *keyID)
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	base := *server
	if base == "" {
		base = localURL(cfg)
	}
	c := adminClient{base: strings.TrimRight(base, "/"), id: id, secret: secret}
	switch args[0] {
	case "list":
		path := "/api/admin/recordings"
		if *room != "" {
			path = "/api/admin/rooms/" + url.PathEscape(*room) + "/recordings"
		}
		var reply struct {
			Recordings []recording.Manifest `json:"recordings"`
		}
		if err := c.call(ctx, http.MethodGet, path, nil, &reply); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROOM\tID\tSTATE\tSTARTED\tDURATION\tTRACKS\tBYTES")
		for _, m := range reply.Recordings {
			dur := "-"
			if m.Ended != nil {
				dur = m.Ended.Sub(m.Started).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", m.Room, m.ID, m.State, m.Started.Format(time.RFC3339), dur, len(m.Tracks), m.Bytes)
		}
		return tw.Flush()
	default:
		var m recording.Manifest
		if err := c.call(ctx, http.MethodPost, "/api/admin/rooms/"+url.PathEscape(*room)+"/recording/"+args[0], struct{}{}, &m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s: recording %s\n", args[0], m.Room, m.ID)
		return nil
	}
}

// pickAPIKey is the key --key names, else the first configured one.
func pickAPIKey(cfg Config, keyID string) (id, secret string, err error) {
	if len(cfg.Signaling.APIKeys) == 0 {
		return "", "", errors.New("no API keys configured (signaling.api_keys in --config FILE or PARLEY_SIGNALING_API_KEYS=key=secret)")
	}
	if keyID == "" {
		ids := make([]string, 0, len(cfg.Signaling.APIKeys))
		for k := range cfg.Signaling.APIKeys {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		keyID = ids[0]
	}
	secret, ok := cfg.Signaling.APIKeys[keyID]
	if !ok {
		return "", "", fmt.Errorf("no API key %q configured", keyID)
	}
	return keyID, secret, nil
}

// localURL is the server on this machine, from signaling.listen.
func localURL(cfg Config) string {
	scheme := "http"
	if cfg.Signaling.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Signaling.Listen)
	if err != nil {
		return scheme + "://" + cfg.Signaling.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
