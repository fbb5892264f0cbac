// Package packetcache keeps the most recent RTP packets of one track so that
// NACKs from any subscriber can be answered without asking the publisher.
package packetcache

import "sync"

// MaxPacketSize is the largest packet a slot holds. pion reads at most its
// receive MTU (1460 by default) from the wire, so 1500 covers everything
// the SFU can receive.
const MaxPacketSize = 1500

// Cache is a ring of fixed-size slots indexed by the low bits of the RTP
// sequence number. One cache is shared by every subscriber of a track: the
// forwarder writes each packet once and every writer copies it out, so the
// hot path never allocates. Safe for concurrent use.
type Cache struct {
	mu      sync.RWMutex
	mask    uint16
	size    uint16
	slots   []slot
	data    []byte // size * MaxPacketSize bytes, slot i at i*MaxPacketSize
	highest uint16
	started bool
}

type slot struct {
	seq   uint16
	n     uint16
	valid bool
}

// New returns a cache holding size packets. size is rounded up to a power
// of two (so the index is a mask) and clamped to [16, 32768].
func New(size int) *Cache {
	n := 16
	for n < size && n < 32768 {
		n <<= 1
	}
	return &Cache{
		mask:  uint16(n - 1),
		size:  uint16(n),
		slots: make([]slot, n),
		data:  make([]byte, n*MaxPacketSize),
	}
}

// Size is the number of packets the cache holds.
func (c *Cache) Size() int { return int(c.size) }

// Put stores a copy of pkt under seq. Packets larger than MaxPacketSize are
// not stored (false). A packet far older than the newest one is ignored
// because its slot already belongs to a newer packet; a jump far ahead
// (a stream restart) forgets everything older.
func (c *Cache) Put(seq uint16, pkt []byte) bool {
	if len(pkt) > MaxPacketSize || len(pkt) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.started:
		c.started = true
		c.highest = seq
	default:
		diff := seq - c.highest // forward distance, modulo 2^16
		if diff != 0 && diff < 0x8000 {
			if diff >= c.size {
				for i := range c.slots {
					c.slots[i].valid = false
				}
			}
			c.highest = seq
		} else if c.highest-seq >= c.size {
			return false // older than anything the ring can hold
		}
	}
	i := seq & c.mask
	off := int(i) * MaxPacketSize
	copy(c.data[off:off+MaxPacketSize], pkt)
	c.slots[i] = slot{seq: seq, n: uint16(len(pkt)), valid: true}
	return true
}

// Get copies the packet stored under seq into dst and returns its length,
// or 0 if it is not cached (never received, evicted by newer packets, or dst
// too small).
func (c *Cache) Get(seq uint16, dst []byte) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.started || c.highest-seq >= c.size {
		return 0
	}
	s := c.slots[seq&c.mask]
	if !s.valid || s.seq != seq || int(s.n) > len(dst) {
		return 0
	}
	off := int(seq&c.mask) * MaxPacketSize
	return copy(dst, c.data[off:off+int(s.n)])
}

// Has reports whether a packet is stored under seq.
func (c *Cache) Has(seq uint16) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.started || c.highest-seq >= c.size {
		return false
	}
	s := c.slots[seq&c.mask]
	return s.valid && s.seq == seq
}

// Len is the length of the packet stored under seq, 0 if none is: what
// a retransmission of it would cost, known without copying it.
func (c *Cache) Len(seq uint16) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.started || c.highest-seq >= c.size {
		return 0
	}
	s := c.slots[seq&c.mask]
	if !s.valid || s.seq != seq {
		return 0
	}
	return int(s.n)
}
