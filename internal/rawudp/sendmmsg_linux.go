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

// maxSegments is the most datagrams one UDP GSO message carries (the
// kernel's UDP_MAX_SEGMENTS), and maxGSOBytes its largest payload.
const (
	maxSegments = 64
	maxGSOBytes = 65000
)

// gsoCmsg is one UDP_SEGMENT control message: the segment size.
type gsoCmsg struct {
	hdr  unix.Cmsghdr
	size uint16
	_    [6]byte // to CMSG_SPACE(2)
}

// sysBatch is a batch as sendmmsg reads it. Its pointers point into the
// same heap object, which Go does not move.
type sysBatch struct {
	msgs  [batchSize]mmsghdr
	first [batchSize]int // the datagram each message starts with
	iov   [batchSize]unix.Iovec
	sa    [batchSize]unix.RawSockaddrInet6 // or an Inet4 in its first bytes
	cmsg  [batchSize]gsoCmsg
}

// gsoSupported reports whether the kernel segments UDP for fd (Linux 4.18
// and later).
func gsoSupported(fd int) bool {
	_, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT)
	return err == nil
}

// segment returns the end of the run of datagrams from i that can leave
// as one UDP GSO message: the same destination, the same size, and a
// last one that may be shorter.
func segment(b *batch, i, to int) int {
	if !b.gso {
		return i + 1
	}
	size, total := b.lens[i], b.lens[i]
	j := i + 1
	for j < to && j-i < maxSegments && b.to[j] == b.to[i] && b.lens[j] <= size && b.lens[j-1] == size &&
		total+b.lens[j] <= maxGSOBytes {
		total += b.lens[j]
		j++
	}
	return j
}

// sendMmsg sends b's datagrams from index from up to (not including)
// index to with one raw sendmmsg and returns how many the kernel took.
// Runs of datagrams to one destination go as one message each, which
// the kernel segments (UDP GSO) when the batch allows it. err is the
// error of the first datagram not taken when that is none of them
// (EAGAIN when the socket buffer is full); after a partial send the
// kernel reports no error and the next call meets it.
func sendMmsg(fd int, v6 bool, b *batch, from, to int) (sent int, err error) {
	s := &b.sys
	for i := from; i < to; i++ {
		s.iov[i].Base = &b.data[i*slotSize]
		s.iov[i].SetLen(b.lens[i])
	}
	msgs := 0
	for i := from; i < to; {
		saLen, ferr := fillSockaddr(&s.sa[i], v6, b.to[i])
		if ferr != nil {
			// queue checked the family; this cannot happen. Send
			// what comes before it.
			if msgs == 0 {
				return 0, ferr
			}
			to = i
			break
		}
		end := segment(b, i, to)
		m := &s.msgs[msgs]
		*m = mmsghdr{hdr: unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&s.sa[i])),
			Namelen: saLen,
			Iov:     &s.iov[i],
		}}
		m.hdr.SetIovlen(end - i)
		if end-i > 1 {
			c := &s.cmsg[msgs]
			c.hdr = unix.Cmsghdr{Level: unix.SOL_UDP, Type: unix.UDP_SEGMENT}
			c.hdr.SetLen(unix.CmsgLen(2))
			c.size = uint16(b.lens[i])
			m.hdr.Control = (*byte)(unsafe.Pointer(c))
			m.hdr.SetControllen(unix.CmsgSpace(2))
		}
		s.first[msgs] = i
		msgs++
		i = end
	}
	for {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(msgs), 0, 0, 0)
		switch errno {
		case 0:
			if int(r) >= msgs {
				return to - from, nil
			}
			return s.first[r] - from, nil
		case unix.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}
