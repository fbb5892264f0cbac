package rawudp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// Batching: a writer that is about to send several datagrams corks the
// Conn, and the datagrams written while any writer holds a cork are
// copied into a batch that leaves in one sendmmsg(2) when the last cork
// is released (or the batch is full). Concurrent writers share the
// batch. Within it, a run of datagrams of one size to one destination
// (a video frame's packets to one receiver) goes as one UDP GSO message:
// the kernel walks its UDP/IP stack once for the run and cuts it into
// datagrams at the end. That, not the saved system calls, is what made
// forwarding cheaper (docs/benchmarks.md): sendmmsg alone costs about
// what one sendto per datagram does, since the kernel's work per
// datagram dominates.
//
// No datagram waits longer than the corked sections that overlap its
// write: every Uncork that brings the count to zero flushes. One
// goroutine at a time sends, so batches leave in order and no writer
// waits for another's system call. A full socket buffer (EAGAIN) sends
// the datagram through Go's poller, as an uncorked write would, and the
// rest after it; nothing is dropped silently. A datagram the kernel
// refuses is counted (Conn.SendErrors), since its writer was already
// told it was sent. If the kernel refuses UDP GSO, the Conn stops using
// it.

const (
	// batchSize is the most datagrams one sendmmsg carries.
	batchSize = 64
	// slotSize is the largest datagram a batch copies (an Ethernet
	// MTU); a larger one flushes the batch and goes out by itself.
	slotSize = 1500
)

// batch is one sendmmsg's worth of datagrams, in preallocated memory:
// queueing a datagram copies it and allocates nothing.
type batch struct {
	data [batchSize * slotSize]byte
	lens [batchSize]int
	to   [batchSize]netip.AddrPort
	n    int
	gso  bool     // runs to one destination may leave as one UDP GSO message
	sys  sysBatch // the kernel's view (mmsghdr, iovec, sockaddr), per OS
}

func (b *batch) add(p []byte, to netip.AddrPort) {
	copy(b.data[b.n*slotSize:], p)
	b.lens[b.n] = len(p)
	b.to[b.n] = to
	b.n++
}

func (b *batch) datagram(i int) []byte { return b.data[i*slotSize : i*slotSize+b.lens[i]] }

// Cork makes the writes that follow, from any goroutine, wait in a batch
// until the matching Uncork. Each Cork needs exactly one Uncork. Without
// the raw path (not Linux, or no socket descriptor) it does nothing.
func (c *Conn) Cork() {
	if c.fd < 0 {
		return
	}
	c.bmu.Lock()
	c.corks++
	c.bmu.Unlock()
}

// Uncork releases a Cork; the last one sends the batch.
func (c *Conn) Uncork() {
	if c.fd < 0 {
		return
	}
	c.bmu.Lock()
	c.corks--
	if c.corks < 0 {
		c.bmu.Unlock()
		panic("rawudp: Uncork without Cork")
	}
	if c.corks > 0 || c.pending == nil || c.pending.n == 0 {
		c.bmu.Unlock()
		return
	}
	c.flushLocked()
}

// SendErrors is the number of batched datagrams the kernel refused (their
// writers had been told they were sent).
func (c *Conn) SendErrors() uint64 { return c.sendErrors.Load() }

// queue adds p to the batch if the Conn is corked; queued false means it
// was not, and the caller sends p itself.
func (c *Conn) queue(p []byte, to netip.AddrPort) (queued bool, err error) {
	c.bmu.Lock()
	if c.corks == 0 {
		c.bmu.Unlock()
		return false, nil
	}
	if len(p) > slotSize {
		// Too big for a slot: send what is queued first, keeping the
		// order, then let the caller send p.
		if c.pending != nil && c.pending.n > 0 {
			c.flushLocked()
		} else {
			c.bmu.Unlock()
		}
		return false, nil
	}
	if !to.Addr().Unmap().Is4() && !c.v6 {
		c.bmu.Unlock()
		return true, ErrFamily
	}
	for c.pending != nil && c.pending.n == batchSize {
		// Full, and its writer waits for room among the ready ones.
		c.roomForReady.Wait()
	}
	if c.pending == nil {
		c.pending = c.freeBatch()
	}
	c.pending.add(p, to)
	if c.pending.n == batchSize {
		c.flushLocked()
		return true, nil
	}
	c.bmu.Unlock()
	return true, nil
}

// freeBatch returns an unused batch; bmu is held. Batches are made
// only while more are pending, ready or being sent than ever before, so
// a steady stream allocates none.
func (c *Conn) freeBatch() *batch {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	return &batch{gso: c.gso.Load()}
}

// maxReady is how many batches may wait for the sender before writers
// wait too (the socket buffer is full and the sender is on the poller).
const maxReady = 4

// flushLocked hands the pending batch to the sender and unlocks bmu.
// One goroutine at a time sends (c.sending), so batches leave in the
// order they were handed over and no writer waits for another's system
// call: whoever finds no sender becomes it, and sends until no batch is
// ready.
func (c *Conn) flushLocked() {
	for len(c.ready) >= maxReady {
		c.roomForReady.Wait()
	}
	if c.pending == nil || c.pending.n == 0 {
		// Handed over by another writer while this one waited.
		c.bmu.Unlock()
		return
	}
	c.ready = append(c.ready, c.pending)
	c.pending = nil
	c.roomForReady.Broadcast() // writers waiting for a pending batch with room
	if c.sending {
		c.bmu.Unlock()
		return
	}
	c.sending = true
	for len(c.ready) > 0 {
		b := c.ready[0]
		copy(c.ready, c.ready[1:])
		c.ready = c.ready[:len(c.ready)-1]
		c.roomForReady.Broadcast()
		c.bmu.Unlock()
		c.sendBatch(b)
		b.n = 0
		c.bmu.Lock()
		c.free = append(c.free, b)
	}
	c.sending = false
	c.bmu.Unlock()
}

// sendBatch sends b's datagrams in order, as many per call as the kernel
// takes; only the sender calls it.
func (c *Conn) sendBatch(b *batch) {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		c.sendErrors.Add(uint64(b.n))
		return
	}
	for i := 0; i < b.n; {
		sent, err := sendBatchCall(c.fd, c.v6, b, i, b.n)
		i += sent
		if err == nil {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			// The socket buffer is full: this one waits on Go's poller,
			// then the rest try the kernel again.
			c.mu.RUnlock()
			_, werr := c.WriteToUDPAddrPort(b.datagram(i), b.to[i])
			c.mu.RLock()
			if werr != nil {
				c.sendErrors.Add(1)
			}
			if c.closed {
				c.sendErrors.Add(uint64(b.n - i - 1))
				break
			}
		} else if b.gso {
			// The kernel or the route does not take UDP GSO after all:
			// send this batch and the later ones datagram by datagram.
			b.gso = false
			c.gso.Store(false)
			continue
		} else {
			c.sendErrors.Add(1) // refused (unreachable, say): skip it
		}
		i++
	}
	c.mu.RUnlock()
}

// sendBatchCall is sendMmsg; tests replace it to meet a full socket
// buffer at a chosen datagram.
var sendBatchCall = sendMmsg //nolint:gochecknoglobals // test seam

// errClosed is what a write on a closed Conn returns.
func errClosed() error { return &net.OpError{Op: "write", Net: "udp", Err: net.ErrClosed} }
