package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Test-only credentials for the admin API; the server never sees them
// anywhere but in the temp config file of one test.
const (
	testAPIKey    = "e2e-key"
	testAPISecret = "e2e-secret-0123456789abcdef0123456789abcdef"
)

// server is one parley process started by a test.
type server struct {
	URL     string // http://127.0.0.1:<port>
	Host    string // 127.0.0.1:<port>
	UDPPort int
	TCPPort int
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// serverConfig is the YAML the harness writes. Keep the key names here in
// one place so they follow the config loader if it changes.
func serverConfig(s *server, dataDir string) map[string]any {
	return map[string]any{
		"dev":      true,
		"data_dir": dataDir,
		"signaling": map[string]any{
			"listen":          s.Host,
			"allowed_origins": []string{},
			"api_keys":        map[string]string{testAPIKey: testAPISecret},
			"dev_mode":        true,
		},
		// TURN stays off unless a test turns it on with its own free
		// ports (turnConfig), so parallel runs never fight over 3478.
		"turn": map[string]any{"enabled": false},
		"sfu": map[string]any{
			"udp_port":         s.UDPPort,
			"tcp_port":         s.TCPPort,
			"include_loopback": true,
			"interfaces":       []string{"lo"},
			"cidrs":            []string{"127.0.0.0/8"},
		},
	}
}

// startServer runs the parley binary on free loopback ports and waits for
// /healthz. The process is stopped when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with a hook that edits the generated
// configuration (for example to enable TURN or shorten the ring timeout)
// before it is written.
func startServerWith(t *testing.T, tweak func(s *server, cfg map[string]any)) *server {
	t.Helper()
	requireBinary(t)
	dir := t.TempDir()
	s := &server{
		Host:    fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")),
		UDPPort: freePort(t, "udp"),
		TCPPort: freePort(t, "tcp"),
		logPath: filepath.Join(dir, "parley.log"),
		exited:  make(chan struct{}),
	}
	s.URL = "http://" + s.Host
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tree := serverConfig(s, dataDir)
	if tweak != nil {
		tweak(s, tree)
	}
	cfg, err := yaml.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(binPath, "--config", cfgPath)
	s.cmd.Env = serverEnv()
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start parley: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("parley log (last lines):\n%s\nconfig:\n%s", s.logTail(80), cfg)
		}
	})
	s.waitHealthy(t, 30*time.Second)
	return s
}

// serverEnv is the test process's environment without PARLEY_*
// variables: the config file alone decides the server's settings, and
// the loader rejects unknown PARLEY_* names such as PARLEY_E2E_RACE.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *server) waitHealthy(t *testing.T, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			t.Fatalf("parley exited before it was healthy (%v); log:\n%s", s.waitErr, s.logTail(60))
		default:
		}
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("parley not healthy within %v (last: %s); log:\n%s", limit, last, s.logTail(60))
}

// stop sends SIGTERM and gives the server a bounded time for a clean
// shutdown before killing it; a server that needs the kill fails the test.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		// A clean shutdown exits 0; a race report (PARLEY_E2E_RACE=1)
		// makes it exit 66.
		if s.waitErr != nil {
			t.Errorf("parley exited with %v after SIGTERM, want a clean exit", s.waitErr)
		}
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("parley did not exit within 10 s of SIGTERM; killed")
	}
	if strings.Contains(s.logTail(100000), "WARNING: DATA RACE") {
		t.Errorf("the race detector reported a data race in parley; see the log")
	}
}

func (s *server) logTail(n int) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for a free loopback port. Another process can
// take it before the server binds it; on loopback in a test run that is
// rare enough, and the failure is loud (the server does not get healthy).
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// testContext is bounded by the test's deadline (minus a margin for
// cleanup) or by max, whichever is sooner.
func testContext(t *testing.T, max time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	if dl, ok := t.Deadline(); ok {
		ctx2, cancel2 := context.WithDeadline(ctx, dl.Add(-15*time.Second))
		t.Cleanup(cancel2)
		ctx = ctx2
	}
	t.Cleanup(cancel)
	return ctx
}
