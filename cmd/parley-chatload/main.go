// Command parley-chatload measures Parley's chat under load: it connects
// many WebSocket clients (one process, distinct identities) in rooms or
// groups, sends at stepped rates and reports persisted messages/s (acks),
// deliveries/s, delivery and ack latency, errors by code, the server's
// memory per idle connection (from its /metrics) and its own CPU use.
//
//	parley-chatload --url http://127.0.0.1:8080 --key K --secret S \
//	    --clients 2000 --rooms 20 --rates 100,250,500,1000,1500 --step 15s
//
// Tokens are signed locally with the API key, so the server needs no
// admin round trip per client. The server must allow the load: see
// --help for the limits that matter.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/internal/chatload"
	"github.com/parleyhq/parley/signaling/auth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley-chatload:", err)
		os.Exit(1)
	}
}

const usageNote = `
The server needs limits that fit one machine running every client:
  signaling.max_participants_per_room >= clients/rooms (room mode),
  chat.max_group_members >= clients/rooms (group mode),
  signaling.send_queue large enough for bursts of pushes (e.g. 1024),
  and a file descriptor limit (ulimit -n) above the client count.
Default per-connection rates (rate_per_second 50, chat_rate_per_second 10)
suffice while rate/senders stays under 10 messages/s per client.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parley-chatload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: parley-chatload --url http://host:port --key ID --secret SECRET [flags]")
		fs.PrintDefaults()
		fmt.Fprint(stderr, usageNote)
	}
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL (http or https); several, comma-separated, for the nodes of a cluster (clients are spread over them in turn; use --mode group)")
	key := fs.String("key", "", "API key id (tokens are signed locally)")
	secret := fs.String("secret", "", "API secret")
	clients := fs.Int("clients", 2000, "WebSocket clients, each its own identity")
	rooms := fs.Int("rooms", 20, "rooms (or groups) the clients are spread over")
	mode := fs.String("mode", chatload.ModeRoom, "room: chat-only call-room sessions; group: messaging sessions in group conversations")
	rates := fs.String("rates", "100,250,500,1000,1500", "comma-separated send rates (messages/s in) to step through")
	senders := fs.Int("senders", 0, "clients that send (0: all)")
	step := fs.Duration("step", 15*time.Second, "measured duration per step")
	warmup := fs.Duration("warmup", 3*time.Second, "sending before each step's measured window")
	total := fs.Duration("max-total", 10*time.Minute, "cap on the whole run")
	limit := fs.Duration("p99", 50*time.Millisecond, "delivery p99 a step must stay under")
	keepGoing := fs.Bool("keep-going", false, "run every rate even after a step fails")
	settle := fs.Duration("settle", 5*time.Second, "idle time before measuring memory per connection")
	gcWait := fs.Duration("gc-wait", 130*time.Second, "further wait for the server's next GC, so the live heap can be read (Go forces one every 2 min)")
	textBytes := fs.Int("text-bytes", 100, "message text size")
	dialConc := fs.Int("dial-concurrency", 32, "simultaneous connects")
	verbose := fs.Bool("v", false, "log progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || *secret == "" {
		return errors.New("--key and --secret are required")
	}
	steps, err := parseRates(*rates)
	if err != nil {
		return err
	}
	var nodes []*url.URL
	for _, b := range strings.Split(*base, ",") {
		u, err := url.Parse(strings.TrimSpace(b))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--url %q: want http://host:port or https://host:port", b)
		}
		nodes = append(nodes, u)
	}
	u := nodes[0]
	keys, err := auth.NewKeySet(map[string]string{*key: *secret})
	if err != nil {
		return fmt.Errorf("--key/--secret: %w", err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	nofile, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	if nofile < uint64(*clients)+64 {
		return fmt.Errorf("file descriptor limit %d is too low for %d clients (raise the hard limit: ulimit -Hn)", nofile, *clients)
	}

	ctx, cancel := context.WithTimeout(ctx, *total)
	defer cancel()
	endpoint := func(u *url.URL) chatload.LoadEndpoint {
		ws, metrics := *u, *u
		ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
		ws.Path, metrics.Path = "/ws", "/metrics"
		return chatload.LoadEndpoint{URL: ws.String(), Origin: u.Scheme + "://" + u.Host, MetricsURL: metrics.String()}
	}
	first := endpoint(u)
	var more []chatload.LoadEndpoint
	for _, n := range nodes[1:] {
		more = append(more, endpoint(n))
	}

	fmt.Fprintf(stdout, "parley-chatload: %d clients in %d %ss against %s (fd limit %d)\n", *clients, *rooms, *mode, *base, nofile)
	load, err := chatload.Connect(ctx, chatload.LoadOptions{
		URL: first.URL, Origin: first.Origin, MetricsURL: first.MetricsURL, More: more,
		Clients: *clients, Rooms: *rooms, Mode: *mode,
		Token: func(identity, room string) (string, error) {
			return keys.Issue(*key, auth.Claims{Identity: identity, Room: room, Grants: auth.Grants{Chat: true}}, time.Hour)
		},
		DialConcurrency: *dialConc, Settle: *settle, GCWait: *gcWait, TextBytes: *textBytes, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer load.Close()
	fmt.Fprintf(stdout, "idle: %s\n", load.Idle)

	best := -1.0
	for _, rate := range steps {
		res, err := load.Step(ctx, chatload.StepOptions{Rate: rate, Senders: *senders, Warmup: *warmup, Duration: *step})
		fmt.Fprintf(stdout, "step: %s live=%d\n", res, load.Live())
		if err != nil {
			return fmt.Errorf("stopped during the %.0f/s step: %w", rate, err)
		}
		ok := res.OK(*limit)
		if ok && rate > best {
			best = rate
		}
		if !ok && !*keepGoing {
			break
		}
	}
	if best < 0 {
		fmt.Fprintf(stdout, "result: no step kept delivery p99 under %s with every message acked and delivered\n", *limit)
	} else {
		fmt.Fprintf(stdout, "result: highest rate with delivery p99 < %s, all acked and delivered: %.0f messages/s\n", *limit, best)
	}
	return nil
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit (one
// descriptor per client) and returns the new soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}
