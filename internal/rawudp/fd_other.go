//go:build !linux

package rawudp

import (
	"errors"
	"net"
	"net/netip"
)

// ErrFamily is returned for an IPv6 destination on an IPv4 socket.
var ErrFamily = errors.New("address family does not match the socket")

// rawFD: only Linux has the raw path; elsewhere writes go through the
// net.UDPConn.
func rawFD(*net.UDPConn) (int, bool, bool) { return -1, false, false }

// SendTo is not available outside Linux; Conn never calls it there.
func SendTo(int, bool, []byte, netip.AddrPort) error { return errors.ErrUnsupported }
