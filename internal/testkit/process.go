package testkit

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// waitDelay bounds how long Wait waits for a killed process's output
// pipes to close: a grandchild that inherited them would otherwise hold
// Wait open indefinitely.
const waitDelay = 5 * time.Second

// Process is a child program a test runs: ffmpeg publishing a stream, or
// coturn's tools. It has its own process group, and killing it kills the
// group, so nothing it spawned outlives it.
type Process struct {
	cmd  *exec.Cmd
	out  SyncBuffer
	done chan struct{}
	err  error
}

// StartProcess starts name with args, collecting its stdout and stderr.
// The process group is killed when ctx ends or, at the latest, when the
// test ends; cleanup also reaps it, so no test leaves a process behind.
func StartProcess(t testing.TB, ctx context.Context, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A negative pid signals the whole group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	p := &Process{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		// The group may still hold children after the leader exited.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// Wait waits for the process to exit and returns what it printed and its
// exit error. It may be called more than once.
func (p *Process) Wait() (output string, err error) {
	<-p.done
	return p.out.String(), p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Output returns what the process has printed so far.
func (p *Process) Output() string { return p.out.String() }

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }
