package rawudp

import (
	"net"

	"golang.org/x/sys/unix"
)

// rawFD returns c's socket and whether it is IPv6. Go's sockets are
// already non-blocking, which the raw path relies on.
func rawFD(c *net.UDPConn) (fd int, v6, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, false, false
	}
	fd = -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		return -1, false, false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return -1, false, false
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return fd, false, true
	case *unix.SockaddrInet6:
		return fd, true, true
	}
	return -1, false, false
}
