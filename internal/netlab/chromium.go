//go:build linux

package netlab

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// devtoolsLine is what Chromium prints once its DevTools endpoint
// listens: "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID".
var devtoolsLine = regexp.MustCompile(`DevTools listening on ws://127\.0\.0\.1:(\d+)(/devtools/browser/\S+)`)

// StartChromium runs chromium (path) with args inside the host's
// namespace, with a fresh profile, and returns its DevTools websocket
// URL as reachable from the test (through Forward). The process group
// is killed and the profile removed when the test ends.
func (h *Host) StartChromium(t testing.TB, path string, args []string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "parley-lab-chromium-")
	if err != nil {
		t.Fatalf("netlab: %s: profile dir: %v", h.Name, err)
	}
	args = append(append([]string(nil), args...),
		"--remote-debugging-port=0", "--user-data-dir="+dir, "about:blank")
	cmd := h.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("netlab: %s: %v", h.Name, err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("netlab: %s: start %s: %v", h.Name, path, err)
	}
	found := make(chan []string, 1)
	var tail strings.Builder // the first lines, for the failure message
	var wg sync.WaitGroup
	wg.Go(func() {
		// Reads until the process ends: Chromium must never block on a
		// full stderr pipe.
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				if tail.Len() < 4000 {
					tail.WriteString(line + "\n")
				}
				if m := devtoolsLine.FindStringSubmatch(line); m != nil {
					found <- m
					sent = true
				}
			}
		}
		if !sent {
			close(found)
		}
	})
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		wg.Wait()
		for range 20 { // Chromium's children may still be writing the profile
			if os.RemoveAll(dir) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	select {
	case m, ok := <-found:
		if !ok {
			t.Fatalf("netlab: %s: chromium exited before DevTools listened:\n%s", h.Name, tail.String())
		}
		local := h.Forward(t, "127.0.0.1:"+m[1])
		return fmt.Sprintf("ws://%s%s", local, m[2])
	case <-time.After(60 * time.Second):
		t.Fatalf("netlab: %s: chromium's DevTools did not listen within 60 s", h.Name)
	}
	return ""
}
