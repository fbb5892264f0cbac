package testkit

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process's own children die with it at the end of the test: ffmpeg and
// coturn's tools may fork, and a forgotten child would outlive the test.
func TestStartProcessKillsGroupAtCleanup(t *testing.T) {
	var grandchild int
	t.Run("inner", func(t *testing.T) {
		p := StartProcess(t, context.Background(), "sh", "-c", "sleep 60 & echo $!; wait")
		Eventually(t, 5*time.Second, "the child's pid", func() bool { return strings.Contains(p.Output(), "\n") })
		pid, err := strconv.Atoi(strings.TrimSpace(p.Output()))
		if err != nil {
			t.Fatalf("output %q: %v", p.Output(), err)
		}
		grandchild = pid
	})
	// Once reaped by its (killed) parent's reaper, signalling it fails.
	Eventually(t, 5*time.Second, "the grandchild to be gone", func() bool {
		return syscall.Kill(grandchild, 0) != nil
	})
}

// Wait reports the exit status and everything printed, and can be called
// again.
func TestStartProcessWait(t *testing.T) {
	p := StartProcess(t, context.Background(), "sh", "-c", "echo out; echo err >&2; exit 3")
	for range 2 {
		out, err := p.Wait()
		if err == nil || !strings.Contains(out, "out") || !strings.Contains(out, "err") {
			t.Fatalf("Wait = %q, %v; want both lines and exit status 3", out, err)
		}
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Wait returned")
	}
}
