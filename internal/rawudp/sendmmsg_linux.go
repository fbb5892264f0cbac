package rawudp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is the kernel's struct mmsghdr; x/sys/unix does not define it.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// sysBatch is a batch as sendmmsg reads it. Its pointers point into the
// same heap object, which Go does not move.
type sysBatch struct {
	msgs [batchSize]mmsghdr
	iov  [batchSize]unix.Iovec
	sa   [batchSize]unix.RawSockaddrInet6 // or an Inet4 in its first bytes
}

// sendMmsg sends b's datagrams from index from up to (not including)
// index to with one raw sendmmsg and returns how many the kernel took. err is the error of the
// first one not taken when that is none of them (EAGAIN when the socket
// buffer is full); after a partial send the kernel reports no error and
// the next call meets it.
func sendMmsg(fd int, v6 bool, b *batch, from, to int) (sent int, err error) {
	s := &b.sys
	for i := from; i < to; i++ {
		saLen, ferr := fillSockaddr(&s.sa[i], v6, b.to[i])
		if ferr != nil {
			// queue checked the family; this cannot happen. Send
			// what comes before it.
			if i == from {
				return 0, ferr
			}
			to = i
			break
		}
		s.iov[i].Base = &b.data[i*slotSize]
		s.iov[i].SetLen(b.lens[i])
		s.msgs[i] = mmsghdr{hdr: unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&s.sa[i])),
			Namelen: saLen,
			Iov:     &s.iov[i],
		}}
		s.msgs[i].hdr.SetIovlen(1)
	}
	for {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&s.msgs[from])), uintptr(to-from), 0, 0, 0)
		switch errno {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}
