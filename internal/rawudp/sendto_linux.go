package rawudp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrFamily is returned for an IPv6 destination on an IPv4 socket.
var ErrFamily = errors.New("address family does not match the socket")

// SendTo sends p to `to` on the non-blocking UDP socket fd (IPv6 when v6)
// with one raw sendto: no allocation, no poller, never waits. A full
// socket buffer comes back as EAGAIN. The caller keeps fd open for the
// duration of the call.
func SendTo(fd int, v6 bool, p []byte, to netip.AddrPort) error {
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	var sa unsafe.Pointer
	var saLen uintptr
	ip := to.Addr()
	switch {
	case v6:
		sa6.Family = unix.AF_INET6
		setPort(&sa6.Port, to.Port())
		sa6.Addr = ip.As16()
		sa, saLen = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	case ip.Unmap().Is4():
		sa4.Family = unix.AF_INET
		setPort(&sa4.Port, to.Port())
		sa4.Addr = ip.Unmap().As4()
		sa, saLen = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	default:
		return ErrFamily
	}
	var buf unsafe.Pointer
	if len(p) > 0 {
		buf = unsafe.Pointer(&p[0])
	}
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(buf), uintptr(len(p)),
			0, uintptr(sa), saLen)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return errno
		}
	}
}

// setPort stores a port in network byte order in a sockaddr's field.
func setPort(p *uint16, port uint16) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(p))[:], port)
}
