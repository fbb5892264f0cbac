package sendside

import "time"

// The loss-based rate (GCC draft, section 6): more than lossHigh of the
// packets lost, in the interval judged and on average, cuts it (from
// the delay-based rate if that is lower) by half the loss fraction,
// under lossLow in both lets it grow by lossGrowth at each judgement,
// in between holds it. Loss is judged over at least
// lossMinPackets and lossInterval, so one feedback of a few packets does
// not swing it. The estimate is the lower of the two rates: without loss
// the loss-based rate soon stands above the delay-based one.
const (
	lossHigh       = 0.10
	lossLow        = 0.02
	lossGrowth     = 0.05 // per judgement
	lossMinPackets = 20
	lossInterval   = 200 * time.Millisecond
	// lossSmoothing weighs each judged interval into the average loss
	// that GetStats reports.
	lossSmoothing = 0.3
)

type lossRate struct {
	rate          float64
	lost, total   int
	since         time.Time
	average       float64
	haveJudgement bool
}

// add counts one feedback's packets.
func (l *lossRate) add(lost, total int) {
	l.lost += lost
	l.total += total
}

// update judges the loss counted since the last judgement when there
// is enough of it, and returns the loss-based rate, given the delay
// rate.
func (l *lossRate) update(now time.Time, delayRate float64) float64 {
	if l.since.IsZero() {
		l.since = now
	}
	if l.rate == 0 {
		l.rate = delayRate
	}
	if l.total < lossMinPackets || now.Sub(l.since) < lossInterval {
		return l.rate
	}
	frac := float64(l.lost) / float64(l.total)
	if !l.haveJudgement {
		l.average, l.haveJudgement = frac, true
	} else {
		l.average = (1-lossSmoothing)*l.average + lossSmoothing*frac
	}
	// Cut only when the interval and the average both say so, and grow
	// only when neither says otherwise: an interval of a few dozen
	// packets at 5% random loss counts more than 10% one time in five
	// or so, and each such cut took a subscriber's estimate below what
	// its layers needed (lab scenario 3).
	switch {
	case min(frac, l.average) > lossHigh:
		l.rate = min(l.rate, delayRate) * (1 - 0.5*min(frac, l.average))
	case max(frac, l.average) < lossLow:
		l.rate *= 1 + lossGrowth
	}
	l.lost, l.total, l.since = 0, 0, now
	return l.rate
}
