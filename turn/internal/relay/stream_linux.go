package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stream is a client's plain TCP control connection served by the
// event loop (loop_linux.go). The loop reads it, splits the stream into
// frames, relays ChannelData itself and queues the rest (STUN messages)
// for pion's goroutine, which reads them through clientConn as before.
// Writes never block the loop: what the socket does not take at once
// waits in pending and goes out when epoll reports the socket writable.
//
// TLS connections stay on Go's poller (the loop cannot encrypt), and so do
// RFC 6062 data connections: a connection moves to the loop only after
// its first message turned out not to be a ConnectionBind.
type Stream struct {
	fd     int
	id     int32
	loop   *Loop
	local  net.Addr
	remote net.Addr

	// mu is held for reading while the fd is in use and for writing while
	// it is closed.
	mu     sync.RWMutex
	closed atomic.Bool

	// Loop-only reading state.
	in        FrameReader
	toPeer    func(frame []byte) bool // the fast path for ChannelData
	fdr       fdReader
	endOnce   sync.Once
	endErr    error
	ended     chan struct{} // closed when the stream ended (EOF, error, backlog)
	q         chan streamItem
	cur       streamItem // the item Read is part way through
	curOff    int
	done      chan struct{}
	closeOnce sync.Once
	backlog   func() // counts a connection ended for an overlong queue

	wmu     sync.Mutex
	wcond   *sync.Cond
	pending []byte
	wantOut bool

	deadline readDeadline
}

type streamItem struct {
	buf *[]byte // from packetPool, data from offset 4
	n   int
}

const (
	// streamFrameLimit is pion's read size: larger frames are dropped
	// (skipped whole), as pion drops them.
	streamFrameLimit = MaxPayload
	// streamQueueLen bounds the messages waiting for pion per connection.
	// A client that keeps more requests outstanding than this is
	// flooding; its connection is closed.
	streamQueueLen = 256
	// maxPending bounds what waits to be written to a slow client. The
	// loop drops relayed frames beyond it (whole frames, so the framing
	// holds); pion's own writes wait for room.
	maxPending = 256 << 10
)

// newStream takes over c's socket (the fd is duplicated, c is closed),
// carrying over bytes already read into in. Call attach to start serving.
func newStream(c *net.TCPConn, loop *Loop, in FrameReader) (*Stream, error) {
	local, remote := c.LocalAddr(), c.RemoteAddr()
	fd, err := takeFD(c)
	if err != nil {
		return nil, err
	}
	s := &Stream{
		fd:     fd,
		loop:   loop,
		local:  local,
		remote: remote,
		in:     in,
		ended:  make(chan struct{}),
		q:      make(chan streamItem, streamQueueLen),
		done:   make(chan struct{}),
	}
	s.fdr.fd = fd
	s.wcond = sync.NewCond(&s.wmu)
	s.deadline.init()

	return s, nil
}

// attach starts serving the stream; toPeer relays ChannelData.
func (s *Stream) Attach(toPeer func(frame []byte) bool, backlog func()) error {
	s.toPeer, s.backlog = toPeer, backlog
	// Bytes read before the move may already hold whole frames; epoll
	// only reports new data, so hand them on now, before the loop owns
	// the reading state.
	if !s.deliver() {
		return nil // ended; Read reports why
	}
	return s.loop.add(s, s.fd, unix.EPOLLIN|unix.EPOLLRDHUP, &s.id)
}

func (s *Stream) serve(_ *Loop, events uint32) {
	if events&unix.EPOLLOUT != 0 {
		s.flush()
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.readSome()
	}
}

// readSome reads what the socket has (bounded, so one client cannot hold
// the loop) and hands the frames on.
func (s *Stream) readSome() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return
	}
	for range maxBatch {
		if !s.deliver() {
			return
		}
		if err := s.in.Fill(&s.fdr); err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				s.End(err)
			}

			return
		}
	}
	s.deliver()
}

// deliver relays or queues every complete frame in the buffer (raw bytes
// once the framing ended); it reports false once the stream has ended.
func (s *Stream) deliver() bool {
	for {
		select {
		case <-s.ended:
			return false
		default:
		}
		frame, kind := s.in.NextForPion(streamFrameLimit, s.toPeer)
		if kind == FrameNeedMore {
			return true
		}
		if !s.push(frame) {
			return false
		}
	}
}

func (s *Stream) push(b []byte) bool {
	bp, _ := packetPool.Get().(*[]byte)
	n := copy((*bp)[4:], b)
	select {
	case s.q <- streamItem{buf: bp, n: n}:
		return true
	default:
		packetPool.Put(bp)
		if s.backlog != nil {
			s.backlog()
		}
		s.End(ErrBacklog)

		return false
	}
}

// end records why the stream ended; Read returns it after the queue. The
// loop stops watching the socket (a hung-up socket would be reported
// again and again); pion closes the connection once it has read the end.
// It is called with the fd open.
func (s *Stream) End(err error) {
	s.endOnce.Do(func() {
		s.endErr = err
		close(s.ended)
		s.loop.remove(s.id, s.fd)
	})
}

// Read returns the queued frames, one per call (or as much of one as fits).
func (s *Stream) Read(p []byte) (int, error) {
	if s.cur.buf == nil {
		it, err := s.next()
		if err != nil {
			return 0, err
		}
		s.cur, s.curOff = it, 0
	}
	n := copy(p, (*s.cur.buf)[4+s.curOff:4+s.cur.n])
	s.curOff += n
	if s.curOff == s.cur.n {
		packetPool.Put(s.cur.buf)
		s.cur = streamItem{}
	}

	return n, nil
}

func (s *Stream) next() (streamItem, error) {
	for {
		select {
		case it := <-s.q:
			return it, nil
		default:
		}
		expire, stop := s.deadline.wait()
		select {
		case it := <-s.q:
			stop()

			return it, nil
		case <-s.ended:
			stop()
			select {
			case it := <-s.q:
				return it, nil
			default:
			}
			if errors.Is(s.endErr, unix.ECONNRESET) {
				return streamItem{}, io.EOF
			}

			return streamItem{}, s.endErr
		case <-s.done:
			stop()

			return streamItem{}, net.ErrClosed
		case <-expire:
			return streamItem{}, os.ErrDeadlineExceeded
		case <-s.deadline.changed:
			stop()
		}
	}
}

// Write sends p, waiting while too much is pending (pion's messages and
// RFC 6062 data must not be dropped).
func (s *Stream) Write(p []byte) (int, error) {
	return s.write(p, waitForRoom)
}

// TryWrite sends a relayed frame from the loop: it never waits and drops
// the whole frame when the client is too far behind.
func (s *Stream) TryWrite(p []byte) error {
	_, err := s.write(p, dropWhenBehind)

	return err
}

// backlogPolicy says what a write does when too much is pending.
type backlogPolicy int

const (
	waitForRoom    backlogPolicy = iota // pion's messages, RFC 6062 data: never lost
	dropWhenBehind                      // relayed frames from the loop: the loop never waits
)

func (s *Stream) write(p []byte, policy backlogPolicy) (int, error) {
	total := len(p)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for len(s.pending) > maxPending {
		if policy == dropWhenBehind {
			return 0, ErrBacklog
		}
		if s.closed.Load() {
			return 0, net.ErrClosed
		}
		s.wcond.Wait()
	}
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if len(s.pending) == 0 {
		n, err := s.writeFd(p)
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return n, err
		}
		p = p[n:]
		if len(p) == 0 {
			return total, nil
		}
	}
	s.pending = append(s.pending, p...)
	if !s.wantOut {
		s.wantOut = true
		s.loop.modify(s.id, s.fd, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLOUT)
	}

	return total, nil
}

// flush writes pending bytes when the socket has room again.
func (s *Stream) flush() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n, err := s.writeFd(s.pending)
	s.pending = s.pending[:copy(s.pending, s.pending[n:])]
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		s.pending = s.pending[:0]
		s.mu.RLock()
		if !s.closed.Load() {
			s.End(err)
		}
		s.mu.RUnlock()
	}
	if len(s.pending) == 0 && s.wantOut {
		s.wantOut = false
		s.loop.modify(s.id, s.fd, unix.EPOLLIN|unix.EPOLLRDHUP)
	}
	s.wcond.Broadcast()
}

// writeFd writes without blocking and without allocating.
func (s *Stream) writeFd(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	for {
		r, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
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

func (s *Stream) Close() error {
	err := net.ErrClosed
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.loop.remove(s.id, s.fd)
		err = unix.Close(s.fd)
		s.mu.Unlock()
		close(s.done)
		s.wmu.Lock()
		s.wcond.Broadcast()
		s.wmu.Unlock()
	})

	return err
}

func (s *Stream) LocalAddr() net.Addr  { return s.local }
func (s *Stream) RemoteAddr() net.Addr { return s.remote }

func (s *Stream) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

func (s *Stream) SetReadDeadline(t time.Time) error {
	s.deadline.set(t)

	return nil
}

// SetWriteDeadline accepts any deadline: writes wait only for room in
// pending, which Close ends.
func (s *Stream) SetWriteDeadline(time.Time) error { return nil }

// fdReader reads a non-blocking fd for FrameReader.fill; EAGAIN comes back
// as an error, end of stream as io.EOF.
type fdReader struct{ fd int }

func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(r.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return 0, errno
		case n == 0:
			return 0, io.EOF
		default:
			return int(n), nil
		}
	}
}
