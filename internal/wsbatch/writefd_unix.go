//go:build unix

package wsbatch

import "syscall"

// writeFD is one non-blocking write(2) on the socket's descriptor.
func writeFD(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }
