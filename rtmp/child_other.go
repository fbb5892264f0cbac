//go:build !linux

package rtmp

import "os/exec"

// ownChild off Linux relies on exec's default cancel (kill the process):
// there is no Pdeathsig, and process groups differ per system.
func ownChild(cmd *exec.Cmd) {}
