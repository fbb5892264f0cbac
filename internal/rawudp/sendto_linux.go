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
	var sa unix.RawSockaddrInet6
	saLen, err := fillSockaddr(&sa, v6, to)
	if err != nil {
		return err
	}
	var buf unsafe.Pointer
	if len(p) > 0 {
		buf = unsafe.Pointer(&p[0])
	}
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(buf), uintptr(len(p)),
			0, uintptr(unsafe.Pointer(&sa)), uintptr(saLen))
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

// fillSockaddr writes `to` into sa as the socket's family wants it (an
// IPv4 sockaddr in sa's first bytes on an IPv4 socket) and returns its
// length.
func fillSockaddr(sa *unix.RawSockaddrInet6, v6 bool, to netip.AddrPort) (uint32, error) {
	ip := to.Addr()
	switch {
	case v6:
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		setPort(&sa.Port, to.Port())
		return unix.SizeofSockaddrInet6, nil
	case ip.Unmap().Is4():
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		setPort(&sa4.Port, to.Port())
		return unix.SizeofSockaddrInet4, nil
	}
	return 0, ErrFamily
}

// setPort stores a port in network byte order in a sockaddr's field.
func setPort(p *uint16, port uint16) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(p))[:], port)
}
