package wsbatch

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// maxBatchBytes bounds the bytes buffered in one batch; a batch that
// grows past it is written out early.
const maxBatchBytes = 32 << 10

// NewBufPool makes the pool that holds batch buffers between batches, so
// an idle connection holds none. One pool serves a server's connections.
func NewBufPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, maxBatchBytes); return &b }}
}

// Conn sits between gorilla/websocket and the socket. While a batch is
// open (Begin), what gorilla writes lands in a buffer that Flush sends in
// one write; outside a batch writes go straight through.
type Conn struct {
	net.Conn
	// slack is how stale the socket's write deadline may be before a
	// batch sets it again: setting it costs a runtime timer update.
	slack time.Duration

	raw  syscall.RawConn // nil when the socket has no fd (TLS, pipes): no direct writes
	bufs *sync.Pool      // batch buffers, shared by the server's connections

	mu       sync.Mutex
	batching bool
	pending  []byte    // the unsent tail of a direct write; goes out first
	buf      *[]byte   // from bufs while batching and non-empty
	deadline time.Time // the open batch's deadline
	applied  time.Time // the deadline last set on Conn
}

func newConn(nc net.Conn, writeTimeout time.Duration, bufs *sync.Pool) *Conn {
	b := &Conn{Conn: nc, slack: writeTimeout / 4, bufs: bufs}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			b.raw = rc
		}
	}
	return b
}

// CanWriteDirect reports whether the socket has a file descriptor that
// TryDirect can write to.
func (b *Conn) CanWriteDirect() bool { return b.raw != nil }

// Begin opens a batch whose flush must finish by deadline.
func (b *Conn) Begin(deadline time.Time) {
	b.mu.Lock()
	b.batching = true
	b.deadline = deadline
	if b.pending != nil {
		b.buf = b.bufs.Get().(*[]byte)
		*b.buf = append((*b.buf)[:0], b.pending...)
		b.pending = nil
	}
	b.mu.Unlock()
}

// TryDirect writes msg as one text frame if the socket takes it without
// waiting. The caller guarantees that nothing is queued before msg and no
// batch is open. handled false: nothing was done, queue msg. wake: part of
// the frame is pending and the writer must run. err: the socket failed.
func (b *Conn) TryDirect(msg []byte) (handled, wake bool, err error) {
	if b.raw == nil || len(msg) > maxBatchBytes-maxFrameHeader {
		return false, false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching || b.pending != nil {
		return false, false, nil
	}
	bp := b.bufs.Get().(*[]byte)
	frame := appendTextFrame((*bp)[:0], msg)
	n := 0
	var werr error
	if err := b.raw.Write(func(fd uintptr) bool {
		n, werr = writeFD(fd, frame)
		return true // never wait: that is the writer's job
	}); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The last batch's deadline has passed: the socket refuses
			// writes until one sets a new deadline, so queue.
			b.bufs.Put(bp)
			return false, false, nil
		}
		werr = err
	}
	n = max(n, 0)
	if werr != nil && !errors.Is(werr, syscall.EAGAIN) && !errors.Is(werr, syscall.EINTR) {
		b.bufs.Put(bp)
		return true, false, werr
	}
	if n < len(frame) {
		b.pending = append([]byte(nil), frame[n:]...)
		wake = true
	}
	*bp = frame[:0]
	b.bufs.Put(bp)
	return true, wake, nil
}

// Flush writes the open batch and closes it.
func (b *Conn) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.batching = false
	return err
}

func (b *Conn) flushLocked() error {
	if b.buf == nil {
		return nil
	}
	buf := *b.buf
	var err error
	if len(buf) > 0 {
		b.applyLocked()
		_, err = b.Conn.Write(buf)
	}
	*b.buf = buf[:0]
	b.bufs.Put(b.buf)
	b.buf = nil
	return err
}

// applyLocked sets the open batch's deadline on the socket. A later
// deadline within slack of the one already set is good enough: the write
// still cannot hang for much longer than asked.
func (b *Conn) applyLocked() {
	if d := b.deadline; d.Before(b.applied) || d.After(b.applied.Add(b.slack)) {
		b.applied = d
		_ = b.Conn.SetWriteDeadline(d)
	}
}

func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		if b.pending != nil {
			// A frame's tail must go out before anything else.
			if _, err := b.Conn.Write(b.pending); err != nil {
				return 0, err
			}
			b.pending = nil
		}
		return b.Conn.Write(p)
	}
	if b.buf != nil && len(*b.buf)+len(p) > maxBatchBytes {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= maxBatchBytes {
		b.applyLocked()
		return b.Conn.Write(p)
	}
	if b.buf == nil {
		b.buf = b.bufs.Get().(*[]byte)
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

// SetWriteDeadline is what gorilla calls before each frame. Inside a
// batch the batch's deadline applies instead; outside, it is set unless
// unchanged.
func (b *Conn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching || t.Equal(b.applied) {
		return nil
	}
	b.applied = t
	return b.Conn.SetWriteDeadline(t)
}

// SetDeadline also sets the write deadline, so keep applied in step.
func (b *Conn) SetDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = t
	return b.Conn.SetDeadline(t)
}
