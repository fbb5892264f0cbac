package rawudp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// Conn is a UDP socket whose reads go through Go's poller (a reader
// parks until data comes) and whose writes, on Linux, are raw
// non-blocking sendto calls. It implements net.PacketConn and the
// netip.AddrPort reader/writer pion's ICE UDP mux prefers.
type Conn struct {
	*net.UDPConn

	fd  int // -1: write through UDPConn (not Linux, or no fd)
	v6  bool
	gso atomic.Bool // the kernel segments UDP (batch.go)

	// mu is held for reading while fd is in use by a send and for
	// writing while the socket closes, so a send never reaches an fd
	// number the kernel has handed to another file.
	mu     sync.RWMutex
	closed bool

	// Batching (batch.go); bmu guards all but sendErrors.
	bmu          sync.Mutex
	corks        int
	pending      *batch   // being filled
	ready        []*batch // handed to the sender, oldest first
	free         []*batch
	sending      bool // a goroutine is sending the ready batches
	roomForReady *sync.Cond
	sendErrors   atomic.Uint64
}

// Wrap takes over c's writes. c stays the owner of the socket: closing
// the Conn closes it.
func Wrap(c *net.UDPConn) *Conn {
	w := &Conn{UDPConn: c, fd: -1}
	w.roomForReady = sync.NewCond(&w.bmu)
	if fd, v6, ok := rawFD(c); ok {
		w.fd, w.v6 = fd, v6
		w.gso.Store(gsoSupported(fd))
	}
	return w
}

// Raw reports whether writes take the raw path.
func (c *Conn) Raw() bool { return c.fd >= 0 }

// ReadFromAddrPort reads one datagram through Go's poller.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort sends one datagram: a raw sendto, and only when the
// socket buffer is full the poller's wait.
func (c *Conn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if c.fd < 0 {
		return c.WriteToUDPAddrPort(b, to)
	}
	if queued, err := c.queue(b, to); queued {
		if err != nil {
			return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: err}
		}
		return len(b), nil
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return 0, errClosed()
	}
	err := SendTo(c.fd, c.v6, b, to)
	c.mu.RUnlock()
	if errors.Is(err, syscall.EAGAIN) {
		// The socket buffer is full: wait for room on Go's poller, as
		// net.UDPConn does, rather than drop (a burst to many receivers
		// on a busy machine fills it briefly).
		return c.WriteToUDPAddrPort(b, to)
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: err}
	}
	return len(b), nil
}

// WriteTo sends to a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: ErrFamily}
	}
	return c.WriteToAddrPort(b, u.AddrPort())
}

// Close closes the socket once no send is using its fd.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.UDPConn.Close()
}
