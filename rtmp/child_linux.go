package rtmp

import (
	"os/exec"
	"syscall"
)

// ownChild puts the transcoder in its own process group, killed with
// Parley (Pdeathsig) and killed as a group on cancel: ffmpeg has no
// children today, but a wrapper script as ffmpeg_path might.
func ownChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
