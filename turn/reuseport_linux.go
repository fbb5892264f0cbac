package turn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort returns the socket option that lets several UDP sockets bind
// one address; Linux hashes each client's 5-tuple to one of them, which
// spreads clients over the sockets (and their event loops).
func reusePort() func(network, address string, c syscall.RawConn) error { return setReusePort }

func setReusePort(_, _ string, c syscall.RawConn) error {
	var opErr error
	if err := c.Control(func(fd uintptr) {
		opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}

	return opErr
}
