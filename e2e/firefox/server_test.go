package firefox

import (
	"bytes"
	"fmt"
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

// server is one parley process on loopback ports.
type server struct {
	URL     string
	UDPPort int // the SFU's media port
	cmd     *exec.Cmd
	log     *bytes.Buffer // guarded by the exec package's copy goroutine until exit
	exited  chan struct{}
	waitErr error
}

// Throwaway admin credentials that exist only in one test's config file;
// the config loader wants at least one key with a 32-byte secret.
const (
	apiKey    = "firefox-e2e"
	apiSecret = "firefox-e2e-secret-0123456789abcdef0123456789"
)

// startServer writes a dev-mode config (guest tokens from
// /api/dev/token, SFU candidates only on 127.0.0.1) and runs parley with
// it until the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	if parleyBuildErr != nil {
		t.Fatalf("cannot run the Firefox end-to-end tests: %v", parleyBuildErr)
	}
	dir := t.TempDir()
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))
	udpPort := freePort(t, "udp4")
	cfg := map[string]any{
		"dev":      true,
		"data_dir": filepath.Join(dir, "data"),
		"signaling": map[string]any{
			"listen":   host,
			"api_keys": map[string]string{apiKey: apiSecret},
			"dev_mode": true,
		},
		// TURN off: the call goes straight to the SFU on loopback, and no
		// fixed TURN port can clash with a parallel run.
		"turn": map[string]any{"enabled": false},
		"sfu": map[string]any{
			"udp_port":         udpPort,
			"tcp_port":         freePort(t, "tcp4"),
			"include_loopback": true,
			"interfaces":       []string{"lo"},
			"cidrs":            []string{"127.0.0.0/8"},
		},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "parley.yaml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{URL: "http://" + host, UDPPort: udpPort, log: &bytes.Buffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(parleyBin, "--config", cfgPath)
	s.cmd.Env = withoutParleyVars(os.Environ())
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start parley: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop(t, string(data)) })
	s.waitHealthy(t, 30*time.Second)
	return s
}

// withoutParleyVars drops PARLEY_* variables: the config file alone sets
// the server up, and the loader refuses PARLEY_ names it does not know.
func withoutParleyVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PARLEY_") {
			out = append(out, kv)
		}
	}
	return out
}

func (s *server) waitHealthy(t *testing.T, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			t.Fatalf("parley exited before it was healthy: %v", s.waitErr)
		default:
		}
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("parley not healthy within %v: %s", limit, last)
}

// stop ends the server with SIGTERM and a bounded wait, then SIGKILL; a
// server that needs the kill or exits uncleanly fails the test.
func (s *server) stop(t *testing.T, cfg string) {
	select {
	case <-s.exited:
		t.Errorf("parley exited during the test: %v", s.waitErr)
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.waitErr != nil {
				t.Errorf("parley exited with %v after SIGTERM, want a clean exit", s.waitErr)
			}
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("parley did not exit within 10 s of SIGTERM; killed")
		}
	}
	if t.Failed() {
		// The process has exited, so the buffer is no longer written.
		log := s.log.String()
		if lines := strings.Split(log, "\n"); len(lines) > 80 {
			log = strings.Join(lines[len(lines)-80:], "\n")
		}
		t.Logf("parley log (last lines):\n%s\nconfig:\n%s", log, cfg)
	}
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before parley binds it; that is rare on loopback and loud (the
// server never gets healthy).
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp4" {
		c, err := net.ListenPacket(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
