package testkit

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Throwaway admin credentials that exist only in the config file of one
// test's server; the config loader wants a secret of at least 32 bytes.
const (
	ParleyAPIKey    = "testkit-key"
	ParleyAPISecret = "testkit-secret-0123456789abcdef0123456789abcdef"
)

// BuildParley compiles ./cmd/parley of the module that contains dir (a
// test's working directory is its package directory) into out. Race
// builds the binary with the race detector, which makes a server under
// real clients a good race hunt. Call it once from TestMain: a build
// takes seconds even when cached.
func BuildParley(dir, out string, race bool) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is not on PATH: %w", err)
	}
	gomod := exec.Command(goBin, "env", "GOMOD")
	gomod.Dir = dir
	root, err := gomod.Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/parley")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/parley: %w\n%s", err, b)
	}
	return nil
}

// ParleyOptions says how to run one parley process.
type ParleyOptions struct {
	// Bin is the binary BuildParley made.
	Bin string
	// Config is merged over the defaults (DefaultParleyConfig) key by
	// key, recursing into sections, so a test names only what it
	// changes. A nil value deletes the default key.
	Config map[string]any
	// Healthy bounds the wait for /healthz (default 30 s).
	Healthy time.Duration
}

// Parley is one parley process a test started on free loopback ports.
// It is stopped (SIGTERM, then a kill after 10 s) when the test ends.
type Parley struct {
	URL        string // http://127.0.0.1:<port>
	Host       string // 127.0.0.1:<port>
	UDPPort    int    // the SFU's UDP port
	TCPPort    int    // the SFU's ICE-TCP port
	DataDir    string
	ConfigPath string
	LogPath    string

	bin     string
	healthy time.Duration
	config  []byte // the file's contents, logged when a test fails

	// One run of the process; Restart replaces them once the last run
	// has exited.
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// DefaultParleyConfig is the configuration StartParley writes before
// ParleyOptions.Config is merged in: dev mode, one admin API key, TURN
// off (so parallel tests never fight over 3478), and an SFU that offers
// only loopback candidates.
func DefaultParleyConfig(p *Parley) map[string]any {
	return map[string]any{
		"dev":      true,
		"data_dir": p.DataDir,
		"log":      map[string]any{"level": "info"},
		"signaling": map[string]any{
			"listen":          p.Host,
			"allowed_origins": []string{},
			"api_keys":        map[string]string{ParleyAPIKey: ParleyAPISecret},
			"dev_mode":        true,
		},
		"turn": map[string]any{"enabled": false},
		"sfu": map[string]any{
			"udp_port":         p.UDPPort,
			"tcp_port":         p.TCPPort,
			"include_loopback": true,
			"interfaces":       []string{"lo"},
			"cidrs":            []string{"127.0.0.0/8"},
		},
	}
}

// StartParley writes a config file, runs the binary with it and waits
// until /healthz answers 200.
func StartParley(t testing.TB, opt ParleyOptions) *Parley {
	t.Helper()
	if opt.Bin == "" {
		t.Fatal("testkit.StartParley: no binary (build it with BuildParley in TestMain)")
	}
	dir := t.TempDir()
	p := &Parley{
		Host:       fmt.Sprintf("127.0.0.1:%d", FreeTCPPort(t)),
		UDPPort:    FreeUDPPort(t),
		TCPPort:    FreeTCPPort(t),
		DataDir:    filepath.Join(dir, "data"),
		ConfigPath: filepath.Join(dir, "parley.yaml"),
		LogPath:    filepath.Join(dir, "parley.log"),
		exited:     make(chan struct{}),
	}
	close(p.exited) // no run yet: Stop and Kill have nothing to do
	p.URL = "http://" + p.Host
	p.bin, p.healthy = opt.Bin, opt.Healthy
	if p.healthy == 0 {
		p.healthy = 30 * time.Second
	}
	if err := os.MkdirAll(p.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tree := DefaultParleyConfig(p)
	mergeConfig(tree, opt.Config)
	cfg, err := yaml.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	p.config = cfg
	if err := os.WriteFile(p.ConfigPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("parley log (last lines):\n%s\nconfig:\n%s", p.LogTail(80), p.config)
		}
	})
	p.launch(t)
	return p
}

// launch runs the binary with the config file, appending to the log,
// and waits until /healthz answers.
func (p *Parley) launch(t testing.TB) {
	t.Helper()
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "--config", p.ConfigPath)
	cmd.Env = envWithoutParley()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("start parley: %v", err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.waitErr = cmd, exited, nil
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(exited)
	}()
	p.waitHealthy(t, p.healthy)
}

// Kill ends the process with SIGKILL, as a crash or a power cut would,
// and waits (up to 10 s) until it is reaped. Ports, data directory and
// config stay, for Restart. Killing an exited process does nothing.
func (p *Parley) Kill(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("parley pid %d not reaped 10 s after SIGKILL", p.cmd.Process.Pid)
	}
}

// Restart runs the binary again on the same ports, data directory and
// config file, once the last run has ended (Kill or Stop), and waits
// until /healthz answers. The log file keeps both runs. The test's
// cleanup stops whichever run is current.
func (p *Parley) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
	default:
		t.Fatal("testkit: Restart while parley still runs; Kill or Stop it first")
	}
	p.launch(t)
}

// mergeConfig copies src into dst, recursing where both hold a section.
func mergeConfig(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sub, ok := v.(map[string]any)
		have, ok2 := dst[k].(map[string]any)
		if ok && ok2 {
			have = maps.Clone(have)
			mergeConfig(have, sub)
			dst[k] = have
			continue
		}
		dst[k] = v
	}
}

// envWithoutParley is the test's environment without PARLEY_* variables:
// the config file alone decides the server's settings, and the loader
// rejects unknown PARLEY_* names.
func envWithoutParley() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *Parley) waitHealthy(t testing.TB, limit time.Duration) {
	t.Helper()
	WaitHealthy(t, p.URL, limit, p.exited, func() string {
		return fmt.Sprintf("exit %v; log:\n%s", p.waitErr, p.LogTail(60))
	})
}

// WaitHealthy polls base+"/healthz" until it answers 200. It fails the
// test after limit, or at once when exited is closed (the server ended
// before it was healthy, so waiting longer is pointless); output, read
// only then, says what the server printed.
func WaitHealthy(t testing.TB, base string, limit time.Duration, exited <-chan struct{}, output func() string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the server at %s ended before it was healthy: %s", base, output())
		default:
		}
		resp, err := client.Get(base + "/healthz")
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
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("the server at %s was not healthy within %v (last: %s): %s", base, limit, last, output())
}

// Stop sends SIGTERM and gives the server 10 s for a clean shutdown; a
// server that needs the kill, exits non-zero or reports a data race fails
// the test. Stopping twice is harmless.
func (p *Parley) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("parley exited with %v after SIGTERM, want a clean exit", p.waitErr)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("parley did not exit within 10 s of SIGTERM; killed")
	}
	if strings.Contains(p.LogTail(100000), "WARNING: DATA RACE") {
		t.Errorf("the race detector reported a data race in parley; see the log")
	}
}

// Exited is closed when the process (the current run) has ended.
func (p *Parley) Exited() <-chan struct{} { return p.exited }

// ExitErr is how the current run ended (nil for exit status 0); call it
// only after Exited is closed.
func (p *Parley) ExitErr() error {
	<-p.exited
	return p.waitErr
}

// Pid is the server's process id.
func (p *Parley) Pid() int { return p.cmd.Process.Pid }

// RSS is the server's resident set size in bytes, from /proc.
func (p *Parley) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("read parley's status: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS %q: %w", rest, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.Pid())
}

// LogTail returns the last n lines the server wrote.
func (p *Parley) LogTail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
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
