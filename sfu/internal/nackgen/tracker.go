// Package nackgen asks a publisher for the RTP packets the SFU did not
// receive (RFC 4585 generic NACK). It is fed from the SFU's own read loop,
// after pion has unwrapped retransmissions from the publisher's RTX
// stream, so a repaired packet stops its NACKs at once: pion's generator
// interceptor sits below that unwrapping and never sees repairs arrive.
package nackgen

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Window is how many sequence numbers a Tracker remembers: 512 packets
// are about two seconds of a 2.5 Mbit/s video stream, longer than a
// retransmission is worth waiting for.
const Window = 512

// MaxGap is the largest forward jump taken as loss. A bigger jump is a
// restarted or switched stream (or an outage no retransmission repairs):
// the Tracker starts afresh instead of NACKing hundreds of packets.
const MaxGap = Window / 2

const windowMask = Window - 1

// maxStale is how many packets in a row from before the window make a
// restarted stream.
const maxStale = 8

// Tracker follows the sequence numbers of one RTP stream (one SSRC) and
// knows which are missing and how often each was NACKed. Push runs per
// packet on the read loop, Due on the generator's ticker; both are safe
// for concurrent use and neither allocates.
type Tracker struct {
	mu      sync.Mutex
	started bool
	highest uint16
	missing int // slots with missing set, so Due skips a clean window
	// stale counts packets in a row from before the window: one is a
	// very late repair or duplicate, ignored; a run of them is a stream
	// that restarted its numbering further back.
	stale int
	slots [Window]slot

	// wanted, when set, tells whether anyone needs the stream repaired
	// now (see SetWanted).
	wanted atomic.Pointer[func() bool]
}

// SetWanted makes Due ask wanted before each round: while it reports
// false, the stream's losses are forgotten instead of NACKed. A
// simulcast layer no subscriber receives is such a stream: its
// retransmissions would serve nobody (a switch to it starts at a key
// frame), and when its losses come from a congested uplink (a browser
// drops layers because its link shrank) they take that link's room
// from the layers that are watched. Safe to call at any time.
func (t *Tracker) SetWanted(wanted func() bool) {
	t.wanted.Store(&wanted)
}

type slot struct {
	missing bool
	sent    uint8 // NACKs sent for it
	// When it was found missing or last NACKed (UnixNano): the next
	// NACK waits for the retry interval, the first for the reorder
	// grace.
	last int64
}

// Push records the arrival of seq at now (media or repaired, in any
// order; duplicates change nothing).
func (t *Tracker) Push(seq uint16, now time.Time) {
	t.mu.Lock()
	t.push(seq, now.UnixNano())
	t.mu.Unlock()
}

func (t *Tracker) push(seq uint16, now int64) {
	if !t.started {
		t.reset(seq)
		return
	}
	d := int16(seq - t.highest)
	if d > -Window {
		t.stale = 0
	}
	switch {
	case d == 0:
		// A duplicate of the newest.
	case d > MaxGap:
		// A jump forward too big to repair.
		t.reset(seq)
	case d <= -Window:
		if t.stale++; t.stale >= maxStale {
			t.reset(seq)
		}
	case d > 0:
		// Newer: everything between is missing until it arrives. The
		// slots reused here held numbers Window older.
		for s := t.highest + 1; s != seq; s++ {
			t.set(s, true, now)
		}
		t.set(seq, false, now)
		t.highest = seq
	default:
		// Older, within the window: late (reordered) or repaired.
		if sl := &t.slots[seq&windowMask]; sl.missing {
			sl.missing = false
			t.missing--
		}
	}
}

// set marks the slot of s as missing or received, clearing what the slot
// held for the number Window before.
func (t *Tracker) set(s uint16, missing bool, now int64) {
	sl := &t.slots[s&windowMask]
	if sl.missing {
		t.missing--
	}
	*sl = slot{missing: missing, last: now}
	if missing {
		t.missing++
	}
}

// reset forgets everything and starts at seq.
func (t *Tracker) reset(seq uint16) {
	t.slots = [Window]slot{}
	t.started, t.highest, t.missing, t.stale = true, seq, 0, 0
}

// Policy is when a missing packet is NACKed.
type Policy struct {
	// Grace lets a reordered packet arrive before its first NACK.
	Grace time.Duration
	// Retry is the least time between two NACKs of one packet: a
	// retransmission takes a round trip to come back.
	Retry time.Duration
	// Max is how many times one packet is NACKed at most.
	Max int
}

// Due appends to pairs the missing packets whose NACK is due at now, in
// RTCP's packing (a PacketID and a bitmask of the 16 numbers after it),
// counts a NACK for each, and returns the extended slice. Packets NACKed
// Max times are given up.
func (t *Tracker) Due(now time.Time, p Policy, pairs []rtcp.NackPair) []rtcp.NackPair {
	ns := now.UnixNano()
	// Asked outside t.mu: wanted takes the caller's own locks.
	unwanted := false
	if w := t.wanted.Load(); w != nil {
		unwanted = !(*w)()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.missing == 0 {
		return pairs
	}
	if unwanted {
		t.forgetMissing()
		return pairs
	}
	// Oldest first, so that the pairs come out in order.
	for i := uint16(Window - 1); ; i-- {
		s := t.highest - i
		sl := &t.slots[s&windowMask]
		if sl.missing && t.due(sl, ns, p) {
			pairs = appendSeq(pairs, s)
		}
		if i == 0 {
			break
		}
	}
	return pairs
}

func (t *Tracker) due(sl *slot, now int64, p Policy) bool {
	wait := p.Retry
	if sl.sent == 0 {
		wait = p.Grace
	}
	if now-sl.last < int64(wait) {
		return false
	}
	sl.sent++
	sl.last = now
	if int(sl.sent) >= p.Max {
		// This is its last NACK: no longer tracked.
		sl.missing = false
		t.missing--
	}
	return true
}

// forgetMissing stops tracking every missing packet; arrivals go on
// being tracked.
func (t *Tracker) forgetMissing() {
	for i := range t.slots {
		t.slots[i].missing = false
	}
	t.missing = 0
}

// appendSeq adds s to pairs: into the last pair's bitmask when it is one
// of the 16 numbers after that pair's PacketID, else as a new pair.
// Numbers must come in increasing (wrapping) order.
func appendSeq(pairs []rtcp.NackPair, s uint16) []rtcp.NackPair {
	if n := len(pairs); n > 0 {
		last := &pairs[n-1]
		if d := s - last.PacketID; d >= 1 && d <= 16 {
			last.LostPackets |= rtcp.PacketBitmap(1 << (d - 1))
			return pairs
		}
	}
	return append(pairs, rtcp.NackPair{PacketID: s})
}
