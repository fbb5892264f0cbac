package relay

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/parleyhq/parley/internal/rawudp"
)

// Sock is a UDP socket served by the event loop instead of Go's
// poller. It is a net.PacketConn for pion: ReadFrom returns the datagrams
// the loop did not relay itself, WriteTo sends at once. Sends never block
// (a full socket buffer drops the datagram, as a congested link would),
// so write deadlines have nothing to bound.
type Sock struct {
	fd    int
	id    int32
	v6    bool
	local *net.UDPAddr
	loop  *Loop

	// mu is held for reading while the fd is in use and for writing while
	// it is closed, so a closed fd number is never used again by mistake.
	mu     sync.RWMutex
	closed bool

	// handle, when set, sees each datagram first (in frame[4:4+n]) on the
	// loop's goroutine and reports whether it took care of it.
	handle Handler
	// in holds the rest for ReadFrom; when it is full the loop drops and
	// counts, as the kernel would with a full socket buffer.
	in      chan rawPacket
	dropped Counter

	done      chan struct{}
	closeOnce sync.Once

	deadline readDeadline
}

type rawPacket struct {
	buf  *[]byte // from packetPool; the datagram is at offset 4
	n    int
	from netip.AddrPort
}

// rawQueueLen is how many datagrams wait for pion's goroutine per socket:
// control messages, Send indications, data for unknown channels.
const rawQueueLen = 256

var packetPool = sync.Pool{New: func() any { //nolint:gochecknoglobals // a pool of spare buffers, safe for concurrent use
	b := make([]byte, 4+MaxPayload+3)

	return &b
}}

// newSock takes over pc's socket: the fd is duplicated and pc is
// closed, leaving Go's poller; attach hands the socket to the loop. pc
// must be a bound UDP socket of the host.
func newSock(pc net.PacketConn, loop *Loop, dropped Counter) (*Sock, error) {
	fd, err := takeFD(pc)
	if err != nil {
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)

		return nil, fmt.Errorf("getsockname: %w", err)
	}
	s := &Sock{
		fd:      fd,
		loop:    loop,
		in:      make(chan rawPacket, rawQueueLen),
		dropped: dropped,
		done:    make(chan struct{}),
	}
	s.deadline.init()
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		s.local = &net.UDPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		s.v6 = true
		s.local = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	default:
		_ = unix.Close(fd)

		return nil, fmt.Errorf("unexpected socket address %T", sa)
	}
	return s, nil
}

// attach sets the loop's first look at each datagram (nil: none) and
// starts serving the socket; until then datagrams wait in the kernel.
func (s *Sock) Attach(handle Handler) error {
	s.handle = handle
	return s.loop.add(s, s.fd, unix.EPOLLIN, &s.id)
}

func (s *Sock) serve(l *Loop, _ uint32) { l.drain(s) }

// takeFD takes a socket away from Go's poller: it duplicates the fd,
// makes the duplicate non-blocking and closes c, whose socket lives on in
// the duplicate. c must be a socket of the host (a syscall.Conn).
func takeFD(c io.Closer) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("socket %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(f uintptr) {
		fd, dupErr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	// Go's sockets are non-blocking and the flag belongs to the open
	// file, so the duplicate is too; set it anyway: a blocking read would
	// stall every socket of the loop.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)

		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	_ = c.Close()

	return fd, nil
}

// enqueue hands a datagram the loop did not relay to ReadFrom.
func (s *Sock) Enqueue(b []byte, from netip.AddrPort) {
	bp, _ := packetPool.Get().(*[]byte)
	n := copy((*bp)[4:], b)
	select {
	case s.in <- rawPacket{buf: bp, n: n, from: from}:
	default:
		packetPool.Put(bp)
		s.dropped.Inc()
	}
}

// next waits for a queued datagram, the read deadline or Close. The
// caller owns the returned buffer and gives it back with release.
func (s *Sock) next() (rawPacket, error) {
	for {
		expire, stop := s.deadline.wait()
		select {
		case p := <-s.in:
			stop()

			return p, nil
		case <-s.done:
			stop()

			return rawPacket{}, net.ErrClosed
		case <-expire:
			return rawPacket{}, os.ErrDeadlineExceeded
		case <-s.deadline.changed:
			stop()
		}
	}
}

func release(p rawPacket) { packetPool.Put(p.buf) }

// recv copies the next queued datagram into p.
func (s *Sock) Recv(p []byte) (int, netip.AddrPort, error) {
	pkt, err := s.next()
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	n := copy(p, (*pkt.buf)[4:4+pkt.n])
	release(pkt)

	return n, pkt.from, nil
}

// ReadFrom is for callers other than the wrappers (which use recv and
// cache addresses): it allocates an address per datagram.
func (s *Sock) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := s.Recv(p)
	if err != nil {
		return 0, nil, err
	}

	return n, net.UDPAddrFromAddrPort(from), nil
}

func (s *Sock) WriteTo(p []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: rawudp.ErrFamily}
	}
	to := u.AddrPort()
	if err := s.SendTo(p, to); err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
	}

	return len(p), nil
}

// sendTo sends one datagram without blocking and without allocating.
func (s *Sock) SendTo(p []byte, to netip.AddrPort) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return net.ErrClosed
	}
	return rawudp.SendTo(s.fd, s.v6, p, to)
}

func (s *Sock) Close() error {
	err := net.ErrClosed
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.loop.remove(s.id, s.fd)
		err = unix.Close(s.fd)
		s.mu.Unlock()
		close(s.done)
	})

	return err
}

func (s *Sock) LocalAddr() net.Addr { return s.local }

func (s *Sock) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

func (s *Sock) SetReadDeadline(t time.Time) error {
	s.deadline.set(t)

	return nil
}

// SetWriteDeadline accepts any deadline: sends never wait.
func (s *Sock) SetWriteDeadline(time.Time) error { return nil }
