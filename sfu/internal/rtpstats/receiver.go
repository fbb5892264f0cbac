// Package rtpstats computes receive statistics for one RTP stream the way
// RFC 3550 (section 6.4.1 and appendix A) defines them: loss from sequence
// gaps and interarrival jitter from arrival times against RTP timestamps.
package rtpstats

import "time"

// Receiver accumulates statistics for one incoming stream. It is not safe
// for concurrent use; the owner serialises Update and Snapshot.
type Receiver struct {
	clockRate float64

	started    bool
	baseSeq    uint32 // extended sequence number of the first packet
	maxSeq     uint16
	cycles     uint32 // count of sequence wraps, shifted left by 16
	received   uint64
	duplicates uint64 // packets at or below the highest seen (retransmits, reorder)

	// Jitter state (RFC 3550 A.8), in timestamp units.
	jitter      float64
	lastTransit float64
	haveTransit bool
	epoch       time.Time

	// Interval state for FractionLost.
	priorExpected uint64
	priorReceived uint64
	fraction      float64
}

// NewReceiver returns a Receiver for a codec with the given RTP clock rate
// (48000 for Opus, 90000 for video).
func NewReceiver(clockRate uint32) *Receiver {
	if clockRate == 0 {
		clockRate = 90000
	}
	return &Receiver{clockRate: float64(clockRate)}
}

// Update records one packet and reports whether it advanced the highest
// sequence number (false for duplicates, reordered and retransmitted
// packets).
func (r *Receiver) Update(seq uint16, ts uint32, arrival time.Time) bool {
	r.received++
	if !r.started {
		r.started = true
		r.baseSeq = uint32(seq)
		r.maxSeq = seq
		r.epoch = arrival
		r.updateJitter(ts, arrival)
		return true
	}
	delta := seq - r.maxSeq
	if delta == 0 || delta >= 0x8000 {
		// Not newer than the highest: a duplicate, a late packet or a
		// retransmission. It still counts as received (RFC 3550 counts
		// every packet), but it says nothing about network transit time
		// of the current stream position, so jitter skips it.
		r.duplicates++
		return false
	}
	if seq < r.maxSeq {
		r.cycles += 1 << 16
	}
	r.maxSeq = seq
	r.updateJitter(ts, arrival)
	return true
}

func (r *Receiver) updateJitter(ts uint32, arrival time.Time) {
	arrivalTS := arrival.Sub(r.epoch).Seconds() * r.clockRate
	transit := arrivalTS - float64(ts)
	if r.haveTransit {
		d := transit - r.lastTransit
		// The RTP timestamp wraps at 2^32; fold the difference back.
		const wrap = 1 << 32
		if d > wrap/2 {
			d -= wrap
		} else if d < -wrap/2 {
			d += wrap
		}
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.lastTransit = transit
	r.haveTransit = true
}

// Expected is the number of packets the sender sent between the first and
// the highest sequence number received.
func (r *Receiver) Expected() uint64 {
	if !r.started {
		return 0
	}
	ext := uint64(r.cycles) + uint64(r.maxSeq)
	return ext - uint64(r.baseSeq) + 1
}

// Lost is the cumulative number of packets lost (expected minus received,
// never negative: duplicates can make received exceed expected).
func (r *Receiver) Lost() uint64 {
	e := r.Expected()
	if r.received >= e {
		return 0
	}
	return e - r.received
}

// Received is the number of packets seen, duplicates included.
func (r *Receiver) Received() uint64 { return r.received }

// JitterMs is the interarrival jitter in milliseconds.
func (r *Receiver) JitterMs() float64 { return r.jitter / r.clockRate * 1000 }

// JitterUnits is the interarrival jitter in RTP timestamp units, as a
// receiver report carries it.
func (r *Receiver) JitterUnits() uint32 { return uint32(r.jitter) }

// CloseInterval ends a reporting interval and returns the fraction of
// packets lost during it (0..1). FractionLost keeps returning it until the
// next call.
func (r *Receiver) CloseInterval() float64 {
	e, rec := r.Expected(), r.received
	expInt := e - r.priorExpected
	recInt := rec - r.priorReceived
	r.priorExpected, r.priorReceived = e, rec
	if expInt == 0 || recInt >= expInt {
		r.fraction = 0
	} else {
		r.fraction = float64(expInt-recInt) / float64(expInt)
	}
	return r.fraction
}

// FractionLost is the value computed by the last CloseInterval.
func (r *Receiver) FractionLost() float64 { return r.fraction }
