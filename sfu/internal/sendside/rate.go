package sendside

import (
	"math"
	"time"
)

// The delay-based rate (GCC draft, section 5.5): additive-increase,
// multiplicative-decrease driven by the detector. Overuse cuts the rate
// to rateBeta of what the receiver acknowledged; normal lets it grow,
// by rateGrowth a second while far from the rate of the last decreases,
// by about a packet per response time near it (the link's capacity is
// probably there); underuse holds it while the queue drains.
const (
	rateBeta   = 0.85
	rateGrowth = 0.08 // multiplicative, per second
	// rateNearPacket is the additive step per rateResponse near
	// convergence: one packet of this many bits per 200 ms.
	rateNearPacket = 1200 * 8
	rateResponse   = 200 * time.Millisecond
	// rateAckedCap: while increasing, the rate is not set above this
	// multiple of the media acknowledged (plus rateAckedSlack): a
	// sender that does not fill its estimate learns nothing about the
	// room above it, so it must not claim it. A probe's padding does not
	// raise it (see ackedRate); what a probe finds reaches the rate
	// through Probed and holds against the bound for creditFor, while
	// the media sent at it catches up.
	rateAckedCap   = 1.5
	rateAckedSlack = 10_000
)

type rateState uint8

const (
	hold rateState = iota
	increase
	decrease
)

func (s rateState) String() string {
	switch s {
	case increase:
		return "increase"
	case decrease:
		return "decrease"
	}
	return "hold"
}

type aimd struct {
	rate     float64
	state    rateState
	last     time.Time
	lastDrop time.Time
	// The acknowledged rate at decreases: mean and variance (of the
	// normalized rate), to tell whether the rate is near the link's
	// capacity.
	maxMean, maxVar float64
	haveMax         bool
	// credit is the rate a probe showed the path carries (Probed), as
	// later decreases have lowered it: the bound on the rate
	// (rateAckedCap) does not take the rate below it until creditUntil.
	credit      float64
	creditUntil time.Time
}

// creditFor is how long a probe's result holds against the bound: the
// time the layers take to switch up to it, key frame by key frame. Not
// longer: a link that shrinks while the media is below it shows no
// congestion, and an estimate held at a probe's old result sent the
// next cluster, at 1.5 times it, into a link stepped down from 3 to 1
// Mbit/s 5 s before (lab scenario 2, 2026-12-07 02:48:45: 9 packets
// lost), and again at the step to 500 kbit/s (19 lost, a 0.5 s freeze).
const creditFor = 3 * time.Second

// probed raises the rate to what a probe showed the path carries, and
// keeps the bound from taking it back for creditFor.
func (r *aimd) probed(now time.Time, rate float64) {
	r.rate = max(r.rate, rate)
	if now.After(r.creditUntil) {
		r.credit = 0
	}
	r.credit = max(r.credit, rate)
	r.creditUntil = now.Add(creditFor)
}

// creditAt is the probe's credit that holds at now, bit/s (0: none).
func (r *aimd) creditAt(now time.Time) int {
	if now.Before(r.creditUntil) {
		return int(r.credit)
	}
	return 0
}

// update moves the rate for usage at now, given the acknowledged rates
// (0: not known yet).
func (r *aimd) update(now time.Time, u usage, a acked) {
	switch u {
	case overuse:
		r.state = decrease
	case underuse:
		r.state = hold
	default:
		if r.state == hold || r.state == decrease {
			r.state = increase
			if r.last.IsZero() || now.Sub(r.last) > time.Second {
				r.last = now
			}
		}
	}
	dt := now.Sub(r.last)
	if r.last.IsZero() || dt < 0 {
		dt = 0
	}
	if dt > time.Second {
		dt = time.Second // a long silence is not growth earned
	}
	switch r.state {
	case increase:
		if r.near(a.all) {
			r.rate += rateNearPacket * dt.Seconds() / rateResponse.Seconds()
		} else {
			r.rate *= math.Pow(1+rateGrowth, dt.Seconds())
		}
	case decrease:
		// At most one decrease per rateResponse: a single queue shows in
		// every feedback for a while.
		// Nor while what was sent arrives as fast as it left
		// (deliveredAsSent): the trend still reads a queue that is
		// draining, or a receiver's stalls, and 0.85 of what is
		// acknowledged is 0.85 of what the sender chose to send.
		if (r.lastDrop.IsZero() || now.Sub(r.lastDrop) >= rateResponse) && !deliveredAsSent(a.all, a.sent) {
			base := r.rate
			if a.all > 0 {
				base = a.all
				r.noteMax(a.all)
			}
			r.rate = min(r.rate, rateBeta*base)
			r.credit = min(r.credit, r.rate)
			r.lastDrop = now
		}
		r.state = hold
	}
	if a.media > 0 && r.state == increase {
		// Not while the queue grows or drains: the media is then
		// acknowledged at its share of a link a probe filled, and
		// bounded by it the rate fell below the decrease's (to 253
		// kbit/s on a 500 kbit/s path, TestProbeOverflowCutsFromWhatTheLinkCarried).
		// Nor below what a probe showed (credit): the media follows a
		// probe's rate only as fast as the layers switch up, key frame
		// by key frame, and bounded by the media before it a 3 Mbit/s
		// link's estimate fell back to 393 kbit/s within a second of a
		// probe that found 2.1 Mbit/s (lab scenario 2, 2026-12-07 02:03).
		r.rate = min(r.rate, max(rateAckedCap*a.media+rateAckedSlack, float64(r.creditAt(now))))
	}
	r.last = now
}

// deliveredAsSent reports whether the packets acknowledged over the
// last window arrived at least at deliveredRatio of the rate they were
// sent at: no queue grew on the path meanwhile. After an SFU's layers
// step down (to a quarter of the rate at once, when a cap shows), the
// trend stays above the threshold for a while as the queue drains, and
// the acknowledged rate follows the layers down: each cut at 0.85 of
// it took a subscriber capped at 300 kbit/s from 1.23 Mbit/s to 187
// kbit/s in 0.9 s, its cameras to a quarter frame rate (lab scenario 1,
// 2026-12-06 20:21:36).
func deliveredAsSent(acked, sent float64) bool {
	return acked > 0 && sent > 0 && acked >= deliveredRatio*sent
}

// deliveredRatio: see deliveredAsSent.
const deliveredRatio = 0.95

// near reports whether acked is within three standard deviations of
// the mean acknowledged rate at past decreases.
func (r *aimd) near(acked float64) bool {
	if !r.haveMax || acked <= 0 {
		return false
	}
	sd := math.Sqrt(r.maxVar) * r.maxMean
	return math.Abs(acked-r.maxMean) <= 3*sd
}

func (r *aimd) noteMax(acked float64) {
	const alpha = 0.05
	if !r.haveMax {
		r.maxMean, r.maxVar, r.haveMax = acked, 0.4*0.4*0.01, true
		return
	}
	if math.Abs(acked-r.maxMean) > 3*math.Sqrt(r.maxVar)*r.maxMean {
		// The capacity moved: start over from here.
		r.maxMean, r.maxVar = acked, 0.4*0.4*0.01
		return
	}
	r.maxMean = (1-alpha)*r.maxMean + alpha*acked
	norm := (acked - r.maxMean) / r.maxMean
	r.maxVar = min(max((1-alpha)*r.maxVar+alpha*norm*norm, 0.4*0.4*0.0001), 0.4*0.4*0.25)
}
