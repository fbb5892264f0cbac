package signaling

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// Write batching. gorilla/websocket writes every frame with its own
// write(2), and a chat push to a busy member is a handful of small frames:
// under load that syscall (and the deadline reset before it) was most of
// the server's CPU. batchConn sits between gorilla and the socket: while
// the writer goroutine has a batch open, frames gorilla "writes" only land
// in a buffer, and the batch goes out in one write when it ends. Outside
// a batch (the reader answering a ping, the upgrade response) writes go
// straight through.
//
// Direct writes. Most pushes find their connection idle: the writer has
// nothing open and the queue is empty. Waking the writer goroutine for
// one frame costs about as much as the write itself, so tryDirect frames
// the message and offers it to the socket without waiting, on the
// pushing goroutine. What the socket does not take right away becomes
// pending, and the writer sends it, with a deadline, before anything else.

// maxBatchBytes bounds the bytes buffered in one batch; a batch that
// grows past it is written out early.
const maxBatchBytes = 32 << 10

// newBatchBufs makes the pool that holds batch buffers between batches,
// so an idle connection holds none. The Server owns one for all its
// connections.
func newBatchBufs() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, maxBatchBytes); return &b }}
}

type batchConn struct {
	net.Conn
	// slack is how stale the socket's write deadline may be before a
	// batch sets it again: setting it costs a runtime timer update.
	slack time.Duration

	raw  syscall.RawConn // nil when the socket has no fd (TLS): no direct writes
	bufs *sync.Pool      // batch buffers, shared by the server's connections

	mu       sync.Mutex
	batching bool
	pending  []byte    // the unsent tail of a direct write; goes out first
	buf      *[]byte   // from bufs while batching and non-empty
	deadline time.Time // the open batch's deadline
	applied  time.Time // the deadline last set on Conn
}

func newBatchConn(nc net.Conn, writeTimeout time.Duration, bufs *sync.Pool) *batchConn {
	b := &batchConn{Conn: nc, slack: writeTimeout / 4, bufs: bufs}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			b.raw = rc
		}
	}
	return b
}

// begin opens a batch whose flush must finish by deadline.
func (b *batchConn) begin(deadline time.Time) {
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

// tryDirect writes msg as one text frame if the socket takes it without
// waiting. The caller guarantees that nothing is queued before msg and no
// batch is open. handled false: nothing was done, queue msg. wake: part of
// the frame is pending and the writer must run. err: the socket failed.
func (b *batchConn) tryDirect(msg []byte) (handled, wake bool, err error) {
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
		n, werr = syscall.Write(int(fd), frame)
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

// maxFrameHeader is the longest server frame header (no mask).
const maxFrameHeader = 10

// appendTextFrame appends msg as one final, unmasked, uncompressed text
// frame (RFC 6455 section 5.2), which is what gorilla would send for it.
// It relies on the Upgrader never negotiating permessage-deflate
// (EnableCompression is off in New); turning that on needs compressed
// direct frames or no direct writes.
func appendTextFrame(dst, msg []byte) []byte {
	const finText = 0x81
	switch n := len(msg); {
	case n < 126:
		dst = append(dst, finText, byte(n))
	case n <= 0xffff:
		dst = append(dst, finText, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, finText, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, msg...)
}

// flush writes the open batch and closes it.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.batching = false
	return err
}

func (b *batchConn) flushLocked() error {
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
func (b *batchConn) applyLocked() {
	if d := b.deadline; d.Before(b.applied) || d.After(b.applied.Add(b.slack)) {
		b.applied = d
		_ = b.Conn.SetWriteDeadline(d)
	}
}

func (b *batchConn) Write(p []byte) (int, error) {
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
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching || t.Equal(b.applied) {
		return nil
	}
	b.applied = t
	return b.Conn.SetWriteDeadline(t)
}

// SetDeadline also sets the write deadline, so keep applied in step.
func (b *batchConn) SetDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = t
	return b.Conn.SetDeadline(t)
}

// batchHijacker hands gorilla's Upgrade a batchConn instead of the raw
// hijacked connection.
type batchHijacker struct {
	http.ResponseWriter
	writeTimeout time.Duration
	bufs         *sync.Pool
	conn         *batchConn
}

func (h *batchHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = newBatchConn(nc, h.writeTimeout, h.bufs)
	return h.conn, brw, nil
}
