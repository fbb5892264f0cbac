package chatload

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

const (
	testKeyID  = "chatload"
	testSecret = "chatload-test-secret-0123456789abcdef"
)

// serverBin is the real parley binary, built once by TestMain.
var serverBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "chatload-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		serverBin = filepath.Join(dir, "parley")
		build := exec.Command("go", "build", "-o", serverBin, "./cmd/parley")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building parley: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// server is one parley process on a fixed port and data directory, so it
// can be killed and started again in the same place.
type server struct {
	t       *testing.T
	cfgFile string
	port    int
	out     *testkit.SyncBuffer
	cmd     *exec.Cmd
	exited  chan struct{}
	keys    *auth.KeySet
}

// newServer writes a config for a fresh data directory; extraSignaling is
// appended under signaling:.
func newServer(t *testing.T, extraSignaling string) *server {
	t.Helper()
	dir := t.TempDir()
	port := testkit.FreeTCPPort(t)
	cfg := fmt.Sprintf(`data_dir: %s
log:
  level: warn
signaling:
  listen: 127.0.0.1:%d
  api_keys:
    %s: %s
%s
sfu:
  udp_port: %d
  tcp_port: %d
  bind_address: 127.0.0.1
  include_loopback: true
  cidrs: [127.0.0.0/8]
`, filepath.Join(dir, "data"), port, testKeyID, testSecret, extraSignaling, testkit.FreeUDPPort(t), testkit.FreeTCPPort(t))
	file := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cfgFile: file, port: port, out: &testkit.SyncBuffer{}, keys: keys}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server output:\n%s", s.out.String())
		}
	})
	return s
}

func (s *server) base() string  { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }
func (s *server) wsURL() string { return fmt.Sprintf("ws://127.0.0.1:%d/ws", s.port) }

// start runs the binary and waits until /healthz answers.
func (s *server) start() {
	s.t.Helper()
	cmd := exec.Command(serverBin, "--config", s.cfgFile)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting parley: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.exited)
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("parley exited during start-up:\n%s", s.out.String())
		default:
		}
		resp, err := client.Get(s.base() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("parley did not answer /healthz within 15s:\n%s", s.out.String())
}

// kill sends SIGKILL and waits for the process to be reaped.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Errorf("parley pid %d not reaped 10s after SIGKILL", s.cmd.Process.Pid)
	}
	s.cmd = nil
}

// token mints a messaging-only (room "") chat token.
func (s *server) token(identity string) func() (string, error) {
	return func() (string, error) { return s.roomToken(identity, "") }
}

// roomToken mints a chat-only token for room ("" for messaging only).
func (s *server) roomToken(identity, room string) (string, error) {
	return s.keys.Issue(testKeyID, auth.Claims{Identity: identity, Name: strings.ToUpper(identity), Room: room, Grants: auth.Grants{Chat: true}}, 10*time.Minute)
}

func (s *server) dial(ctx context.Context, identity string) (*Conn, error) {
	tok, err := s.token(identity)()
	if err != nil {
		return nil, err
	}
	return Dial(ctx, DialOptions{URL: s.wsURL(), Origin: s.base(), Token: tok})
}

// cleanEnv drops inherited PARLEY_* variables: the binary treats unknown
// ones as an error and known ones would override the test's config.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}
