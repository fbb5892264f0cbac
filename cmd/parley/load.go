package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/internal/promtext"
	"github.com/parleyhq/parley/signaling/auth"
)

// loadCommand implements `parley load`: synthetic publishers and
// subscribers against a running server, reporting forwarded packets per
// second, loss, added delay and the server's CPU cost per 100k packets
// (read from its own /metrics).
func loadCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	key := fs.String("key", "", "API key id (tokens are signed locally)")
	secret := fs.String("secret", "", "API secret")
	room := fs.String("room", "load", "room name")
	pubs := fs.Int("publishers", 1, "publishers (one VP8 + one Opus track each)")
	subs := fs.Int("subscribers", 10, "subscribers (receive every publisher)")
	dur := fs.Duration("duration", 20*time.Second, "measured duration")
	warm := fs.Duration("warmup", 3*time.Second, "warm-up before measuring")
	vpps := fs.Int("video-pps", 250, "video packets per second per publisher")
	vbytes := fs.Int("video-bytes", 1100, "video payload bytes")
	apps := fs.Int("audio-pps", 50, "audio packets per second per publisher")
	sim := fs.Bool("simulcast", false, "publishers send video as three simulcast layers (q, h, f; --video-pps/--video-bytes are f's); subscribers ask for q, h or f (a third each)")
	want := fs.String("simulcast-want", "", "with --simulcast: every subscriber asks for this layer (q, h or f) instead of a third each")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	switch *want {
	case "", "q", "h", "f":
	default:
		return fmt.Errorf("load: --simulcast-want %q: want q, h or f", *want)
	}
	if *key == "" || *secret == "" {
		return errors.New("load: --key and --secret are required (the server prints them in dev mode)")
	}
	if *dur > time.Hour || *pubs > 200 || *subs > 2000 {
		return errors.New("load: at most 1h, 200 publishers and 2000 subscribers per run")
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("load: --url %q is not an http(s) URL", *base)
	}
	keys, err := auth.NewKeySet(map[string]string{*key: *secret})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ws := "ws" + strings.TrimPrefix(u.Scheme, "http") + "://" + u.Host + "/ws"
	origin := u.Scheme + "://" + u.Host
	token := func(identity string, publish bool) (string, error) {
		return keys.Issue(*key, auth.Claims{Identity: identity, Room: *room, Grants: auth.Grants{Publish: publish, Subscribe: !publish}}, time.Hour)
	}
	metricsURL := origin + "/metrics"
	before, err := promtext.Scrape(ctx, metricsURL)
	if err != nil {
		return err
	}
	// The server's counters over the measured window alone: the joins'
	// ICE and DTLS handshakes cost as much CPU as seconds of forwarding,
	// which would make runs that forward fewer packets look dearer.
	var winStart, winEnd promtext.Series
	var winErr error
	window := func(open bool) {
		m, err := promtext.Scrape(ctx, metricsURL)
		if err != nil {
			winErr = err
		}
		if open {
			winStart = m
		} else {
			winEnd = m
		}
	}
	rep, err := loadtest.Run(ctx, loadtest.Options{
		WSURL: ws, Origin: origin, Room: *room, Publishers: *pubs, Subscribers: *subs,
		Duration: *dur, Warmup: *warm, VideoPPS: *vpps, VideoBytes: *vbytes, AudioPPS: *apps, Token: token,
		Simulcast: *sim, SimulcastWant: *want, AdminKey: *key, AdminSecret: *secret, Window: window,
	})
	if err != nil {
		return err
	}
	after, err := promtext.Scrape(context.Background(), metricsURL)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	cpu := after.Sum("process_cpu_seconds_total") - before.Sum("process_cpu_seconds_total")
	fwd := after.Sum("parley_sfu_packets_forwarded_total") - before.Sum("parley_sfu_packets_forwarded_total")
	if fwd > 0 {
		fmt.Fprintf(stdout, "server: cpu=%.2fs forwarded=%.0f cpu_s_per_100k=%.3f (whole run incl. joins and warm-up)\n", cpu, fwd, cpu/fwd*1e5)
	}
	if winErr == nil {
		cpu := winEnd.Sum("process_cpu_seconds_total") - winStart.Sum("process_cpu_seconds_total")
		fwd := winEnd.Sum("parley_sfu_packets_forwarded_total") - winStart.Sum("parley_sfu_packets_forwarded_total")
		if fwd > 0 {
			fmt.Fprintf(stdout, "server, measured window only: cpu=%.2fs forwarded=%.0f cpu_s_per_100k=%.3f\n", cpu, fwd, cpu/fwd*1e5)
		}
	}
	return nil
}
