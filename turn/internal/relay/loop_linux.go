package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop reads the server's UDP sockets (client listeners and the
// relay sockets of UDP clients' allocations) from one goroutine, through
// one epoll set, the way coturn's relay threads do.
//
// Why not a goroutine per socket, as pion runs them: every datagram then
// readies a goroutine of its own, and the Go scheduler wakes an idle
// thread to look for more work each time one starts running. On the TURN
// load of docs/benchmarks.md that cost about twice coturn's context
// switches once the fast path had removed pion's allocations. Here the
// epoll set itself is registered with Go's poller: the loop goroutine
// parks until the set is readable, then takes every ready socket in one
// epoll_wait and reads each until it is empty.
//
// The loop relays ChannelData itself (fastpath.go) and queues every other
// datagram for the socket's reader, where pion's goroutine finds it as it
// always did. It never blocks on anything but the poller: sends are
// non-blocking UDP writes, and relaying to TCP clients, which could block,
// stays on the allocation's own goroutine.
type Loop struct {
	epfd int
	file *os.File // the epoll fd, registered with Go's poller

	mu      sync.RWMutex
	members map[int32]loopMember
	nextID  int32

	events []unix.EpollEvent
	// buf receives each datagram at offset 4, leaving room for a
	// ChannelData header in front and padding behind.
	buf    []byte
	rsa    unix.RawSockaddrAny
	rsaLen uint32

	stopping  atomic.Bool
	closeOnce sync.Once
}

// maxBatch bounds the datagrams read from one socket per round so a
// flooded socket cannot starve the others (epoll is level-triggered: the
// rest is reported again in the next round).
const maxBatch = 64

func newLoop() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to Go's poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)

		return nil, fmt.Errorf("epoll fd: %w", err)
	}

	return &Loop{
		epfd:    epfd,
		file:    os.NewFile(uintptr(epfd), "turn-epoll"),
		members: make(map[int32]loopMember),
		events:  make([]unix.EpollEvent, 128),
		buf:     make([]byte, 4+MaxPayload+3),
	}, nil
}

// loopMember is a socket the loop serves: a datagram socket (Sock) or
// a client's TCP stream (Stream).
type loopMember interface {
	// serve handles the epoll events reported for the member's fd.
	serve(l *Loop, events uint32)
}

// add starts watching fd for events on behalf of m and stores in *id
// (before the loop can see m) the id that later calls name it by.
func (l *Loop) add(m loopMember, fd int, events uint32, id *int32) error {
	l.mu.Lock()
	if l.stopping.Load() {
		l.mu.Unlock()

		return net.ErrClosed
	}
	for {
		l.nextID++
		if l.nextID <= 0 { // wrapped after 2^31 sockets
			l.nextID = 1
		}
		if l.members[l.nextID] == nil {
			break
		}
	}
	*id = l.nextID
	l.members[*id] = m
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: events, Fd: *id}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.remove(*id, fd)

		return fmt.Errorf("epoll_ctl: %w", err)
	}

	return nil
}

// modify changes the events watched for a member.
func (l *Loop) modify(id int32, fd int, events uint32) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.stopping.Load() || l.members[id] == nil {
		return
	}
	ev := unix.EpollEvent{Events: events, Fd: id}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// remove stops watching a member; its fd must still be open.
func (l *Loop) remove(id int32, fd int) {
	l.mu.Lock()
	_, known := l.members[id]
	delete(l.members, id)
	stopped := l.stopping.Load()
	l.mu.Unlock()
	if known && !stopped { // after Close the epoll fd number may belong to someone else
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// run serves until stop; Loops calls it once, on its own goroutine.
func (l *Loop) run() {
	rc, err := l.file.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		for !l.stopping.Load() {
			n, err := epollPoll(int(fd), l.events)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}

				return true
			}
			if n == 0 {
				return false // park until the set is readable again
			}
			for i := range n {
				l.mu.RLock()
				m := l.members[l.events[i].Fd]
				l.mu.RUnlock()
				if m != nil {
					m.serve(l, l.events[i].Events)
				}
			}
		}

		return true
	})
}

// epollPoll collects ready events without waiting. It is a raw system
// call on purpose: the Go runtime's ordinary system call entry wakes the
// runtime's monitor thread (sysmon) whenever the process was idle, and the
// monitor then polls every 20 us for a millisecond or more. With the loop
// waking once per burst of packets, that was half of the server's context
// switches. A call that cannot block has no need of that entry.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}

	return int(n), nil
}

// drain reads what a datagram socket has, up to maxBatch datagrams.
func (l *Loop) drain(s *Sock) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	for range maxBatch {
		n, from, ok := l.recv(s.fd)
		if !ok {
			return
		}
		if s.handle != nil && s.handle(l.buf, n, from) {
			continue
		}
		s.Enqueue(l.buf[4:4+n], from)
	}
}

// recv reads one datagram into buf[4:] without allocating.
func (l *Loop) recv(fd int) (int, netip.AddrPort, bool) {
	for {
		l.rsaLen = unix.SizeofSockaddrAny
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd),
			uintptr(unsafe.Pointer(&l.buf[4])), uintptr(MaxPayload), 0,
			uintptr(unsafe.Pointer(&l.rsa)), uintptr(unsafe.Pointer(&l.rsaLen)))
		switch errno {
		case 0:
			return int(r), sockaddrPort(&l.rsa), true
		case unix.EINTR:
			continue
		default: // EAGAIN: nothing left; anything else (ICMP errors) ends this batch too
			return 0, netip.AddrPort{}, false
		}
	}
}

// stop makes the loop's goroutine return (or, if it never started, never
// serve) and closes the epoll fd; Loops waits for the goroutines it
// started. The sockets are closed by their owners.
func (l *Loop) stop() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.stopping.Store(true)
		l.mu.Unlock()
		_ = l.file.Close() // wakes a parked loop
	})
}

func sockaddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))

		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), portOf(&sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))

		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), portOf(&sa.Port))
	}

	return netip.AddrPort{}
}

// portOf reads a sockaddr's port, stored in network byte order.
func portOf(p *uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])
}
