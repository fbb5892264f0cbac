package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/internal/promtext"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

const testKeyID, testSecret = "PKtest", "test-secret-test-secret-test-secret-1234"

// startServer runs the real command in-process on free loopback ports
// with a config file, as an operator would, and stops it at test end.
func startServer(t *testing.T, extra string) (base string) {
	t.Helper()
	base, _ = startServerFile(t, extra)
	return base
}

// startServerFile is startServer that also returns the config file, for
// subcommands that read the same configuration.
func startServerFile(t *testing.T, extra string) (base, file string) {
	t.Helper()
	httpPort, udpPort, tcpPort := testkit.FreeTCPPort(t), testkit.FreeUDPPort(t), testkit.FreeTCPPort(t)
	dir := t.TempDir()
	cfg := serverConfig(filepath.Join(dir, "data"), httpPort, udpPort, tcpPort) + "  bind_address: 127.0.0.1\n" + extra
	file = filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	t.Cleanup(func() { // runs after the server stopped
		if t.Failed() {
			t.Logf("server stderr:\n%s", stderr.String())
		}
	})
	stopped := make(chan struct{})
	var runErr error
	testkit.RunInBackground(t, "parley", func(ctx context.Context) error {
		defer close(stopped)
		runErr = run(ctx, []string{"--config", file}, nil, stdout, stderr)
		return runErr
	})
	base = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	testkit.WaitHealthy(t, base, 10*time.Second, stopped, func() string {
		return fmt.Sprintf("run returned %v; stderr:\n%s", runErr, stderr.String())
	})
	return base, file
}

// serverConfig is the start of a test server's config file: its data
// directory, warnings only, signaling on a loopback port with the test
// API key, and the SFU on loopback ports. The sfu section comes last, so
// a caller may append keys of it.
func serverConfig(dataDir string, httpPort, udpPort, tcpPort int) string {
	return fmt.Sprintf(`data_dir: %s
log:
  level: warn
signaling:
  listen: 127.0.0.1:%d
  api_keys:
    %s: %s
sfu:
  udp_port: %d
  tcp_port: %d
  include_loopback: true
  cidrs: [127.0.0.0/8]
`, dataDir, httpPort, testKeyID, testSecret, udpPort, tcpPort)
}

// TestCallThroughServer is a call as pion clients see it through the real
// binary's wiring: one publisher of VP8 and Opus, two subscribers, over
// loopback UDP. Both subscribers must get the media with no loss.
func TestCallThroughServer(t *testing.T) {
	base := startServer(t, "")
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := loadtest.Run(ctx, loadtest.Options{
		WSURL: "ws" + strings.TrimPrefix(base, "http") + "/ws", Origin: base, Room: "call",
		Publishers: 1, Subscribers: 2, Duration: 2 * time.Second, Warmup: 2 * time.Second,
		VideoPPS: 120, VideoBytes: 1000, AudioPPS: 50,
		Token: func(identity string, publish bool) (string, error) {
			return keys.Issue(testKeyID, auth.Claims{Identity: identity, Room: "call", Grants: auth.Grants{Publish: publish, Subscribe: true}}, time.Minute)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.Sent == 0 || rep.Received == 0 {
		t.Fatalf("no media forwarded: %v", rep)
	}
	// Loopback does not drop; with NACK recovery whatever the race
	// detector's slowness loses must come back.
	if rep.LossPercent > 0.5 {
		t.Fatalf("loss %.2f%% through the server on loopback: %v", rep.LossPercent, rep)
	}
	m, err := promtext.Scrape(ctx, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if fwd := m.Sum("parley_sfu_packets_forwarded_total"); fwd < float64(rep.Received) {
		t.Fatalf("metrics count %v forwarded packets, subscribers received %d", fwd, rep.Received)
	}
}

func TestConfigCommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config", "example"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(t.TempDir(), "example.yaml")
	if err := os.WriteFile(example, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"config", "check", "--config", example}, nil, &out, io.Discard); err != nil {
		t.Fatalf("the printed example does not load: %v", err)
	}
	bad := []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"unknown key", "sfu:\n  udp_prot: 1\n", nil, "udp_prot"},
		{"bad port", "sfu:\n  udp_port: 70000\n", nil, "udp_port"},
		{"no api keys outside dev", "log:\n  level: info\n", nil, "signaling.api_keys"},
		{"bad env", "dev: true\n", []string{"PARLEY_SIGNALING_PING_INTERVAL=often"}, "signaling.ping_interval"},
		{"bad log level", "dev: true\nlog:\n  level: loud\n", nil, "log.level"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			err := run(context.Background(), []string{"config", "check", "--config", f}, tc.env, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestTokenCreate(t *testing.T) {
	env := []string{"PARLEY_SIGNALING_API_KEYS=" + testKeyID + "=" + testSecret}
	var out bytes.Buffer
	err := run(context.Background(), []string{"token", "create", "--room", "standup", "--identity", "ada", "--name", "Ada", "--ttl", "30m", "--grant", "publish,chat"}, env, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	c, err := keys.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("printed token does not verify: %v", err)
	}
	if c.Identity != "ada" || c.Name != "Ada" || c.Room != "standup" || !c.Grants.Publish || !c.Grants.Chat || c.Grants.Subscribe || c.Grants.Admin {
		t.Fatalf("claims %+v", c)
	}
	if ttl := time.Until(c.ExpiresAt); ttl < 29*time.Minute || ttl > 31*time.Minute {
		t.Fatalf("ttl %v, want 30m", ttl)
	}
	if err := run(context.Background(), []string{"token", "create", "--room", "r", "--identity", "x", "--grant", "fly"}, env, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown grant accepted")
	}
	if err := run(context.Background(), []string{"token", "create", "--room", "r", "--identity", "x"}, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "api_keys") {
		t.Fatalf("want an error about missing API keys, got %v", err)
	}
}

// chat.postgres_url holds a password: `config keys` and a failed start
// show the URL without it.
func TestChatPostgresURLNeverShown(t *testing.T) {
	const url = "postgres://parley:hunter2@127.0.0.1:1/parley?connect_timeout=2"
	env := []string{"PARLEY_CHAT_STORE=postgres", "PARLEY_CHAT_POSTGRES_URL=" + url}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config", "keys"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "postgres://parley:xxxxx@127.0.0.1:1/parley") {
		t.Fatalf("config keys printed the password or no redacted URL:\n%s", out.String())
	}
	cfg := chatDefaults()
	cfg.Store, cfg.PostgresURL = chat.StorePostgres, url
	// Nothing listens on port 1, so opening fails at once.
	_, err := openChatStore(t.Context(), cfg)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "xxxxx") {
		t.Fatalf("opening an unreachable store: %v, want an error with the URL redacted", err)
	}
}

// config check also checks that the PostgreSQL of chat.store answers.
func TestConfigCheckReachesPostgres(t *testing.T) {
	base := "dev: true\nchat:\n  store: postgres\n  postgres_url: "
	good := filepath.Join(t.TempDir(), "pg.yaml")
	if err := os.WriteFile(good, []byte(base+"postgres://postgres@127.0.0.1:5432/test?sslmode=disable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "--config", good}, nil, &out, io.Discard); err != nil {
		t.Fatalf("%v (PostgreSQL must run on 127.0.0.1:5432: ./scripts/test-services starts it)", err)
	}
	if !strings.Contains(out.String(), "PostgreSQL postgres://postgres@127.0.0.1:5432/test?sslmode=disable answers") {
		t.Fatalf("output %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "pg.yaml")
	if err := os.WriteFile(bad, []byte(base+"postgres://parley:pw1secret@127.0.0.1:1/test?sslmode=disable&connect_timeout=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"config", "check", "--config", bad}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "chat.postgres_url") || strings.Contains(err.Error(), "pw1secret") {
		t.Fatalf("unreachable server: %v", err)
	}
}
