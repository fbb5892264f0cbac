package red

// MaxRecover bounds how many redundant blocks the Unwrapper emits for one
// packet. Browsers send at most two; the bound keeps the work and the
// caller's buffer bounded whatever a sender puts in a payload.
const MaxRecover = 4

// resetGap is a sequence jump beyond which the stream is treated as
// restarted (a new source, a long outage) rather than as a loss.
const resetGap = 1000

// Packet is one Opus packet produced by the Unwrapper. Payload aliases the
// RED payload given to Unwrap.
type Packet struct {
	Seq       uint16
	Timestamp uint32
	PT        uint8
	Payload   []byte
	Recovered bool // from a redundant block, not the primary
}

// Unwrapper turns one publisher's RED stream into Opus packets for one
// subscriber, or for all subscribers without RED (its output does not
// depend on the subscriber). It is not safe for concurrent use.
type Unwrapper struct {
	started bool
	highSeq uint16 // highest sequence number forwarded or skipped past
	highTS  uint32 // timestamp of the last packet emitted in order
	// sent has bit i set when highSeq-i was emitted (bit 0 is highSeq).
	sent uint64
	// Recovered counts packets emitted from redundant blocks.
	Recovered uint64
}

// Unwrap appends to out the Opus packets to forward for the RED packet
// (seq, ts, payload), in sending order: recovered frames first, oldest
// first, then the primary. It returns out unchanged when the packet is a
// duplicate, and an error (with out unchanged) when the payload is not
// valid RED. With out of capacity MaxRecover+1 it does not allocate.
func (u *Unwrapper) Unwrap(out []Packet, seq uint16, ts uint32, payload []byte) ([]Packet, error) {
	p, err := Parse(payload)
	if err != nil {
		return out, err
	}
	primary := p.Primary()
	emitPrimary := func(out []Packet) []Packet {
		return append(out, Packet{Seq: seq, Timestamp: ts, PT: primary.PT, Payload: primary.Payload})
	}
	diff := int16(seq - u.highSeq)
	switch {
	case !u.started || diff > resetGap || diff < -resetGap:
		u.started, u.highSeq, u.highTS, u.sent = true, seq, ts, 1
		return emitPrimary(out), nil
	case diff == 0:
		return out, nil
	case diff < 0: // late
		back := uint(-int(diff))
		if back >= 64 || u.sent&(1<<back) != 0 {
			return out, nil // too old to tell, or already sent: drop
		}
		u.sent |= 1 << back
		return emitPrimary(out), nil
	}
	gap := int(diff) - 1
	n := min(gap, p.Redundant(), MaxRecover)
	first := p.Redundant() - n // index of the first block to recover
	u.sent <<= uint(diff)      // 0 once diff >= 64
	lastTS := u.highTS
	i := 0
	for it := p.Blocks(); it.Next(); i++ {
		if i < first || i >= p.Redundant() {
			continue
		}
		b := it.Block()
		d := p.Redundant() - i // distance from the primary
		bts := ts - uint32(b.Offset)
		// Strictly between the last timestamp emitted and the primary's.
		if b.Offset == 0 || int32(bts-lastTS) <= 0 || len(b.Payload) == 0 {
			continue
		}
		lastTS = bts
		out = append(out, Packet{Seq: seq - uint16(d), Timestamp: bts, PT: b.PT, Payload: b.Payload, Recovered: true})
		u.sent |= 1 << uint(d)
		u.Recovered++
	}
	u.highSeq, u.highTS = seq, ts
	u.sent |= 1
	return emitPrimary(out), nil
}
