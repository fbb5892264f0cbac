package trackrec

import "time"

// timeline maps a track's 32-bit RTP timestamps onto the recording's
// clock: the first packet sits at its arrival time since the start, the
// rest follow by timestamp (unwrapped across 2^32).
type timeline struct {
	start time.Time // the recording's start
	rate  int64     // RTP clock rate

	set    bool
	origin time.Duration // recording time of the first timestamp
	first  int64
	last   int64 // last unwrapped timestamp
}

// anchor places ts at arrival, once: later calls do nothing.
func (c *timeline) anchor(ts uint32, arrival time.Time) {
	if !c.set {
		c.set = true
		c.origin = max(arrival.Sub(c.start), 0)
		c.first, c.last = int64(ts), int64(ts)
	}
}

// maxAhead is how far a timestamp may put media after its own arrival
// before the timeline is anchored again: media cannot come from the
// future, so such a jump is the publisher's clock, not time passing.
// Generous, so that media fed faster than real time (a backlog, tests)
// keeps its timestamps.
const maxAhead = 10 * time.Second

// at is ts's time on the recording's clock (anchoring it if it is the
// first). arrival is when the packet came (zero: unknown); a timestamp
// that jumps ahead of it re-anchors the timeline at the arrival.
func (c *timeline) at(ts uint32, arrival time.Time) time.Duration {
	c.anchor(ts, arrival)
	// Unwrap: the nearest value to the last one with these low 32 bits.
	d := int64(int32(ts - uint32(c.last)))
	c.last += d
	t := c.origin + time.Duration((c.last-c.first)*int64(time.Second)/c.rate)
	if !arrival.IsZero() {
		if now := arrival.Sub(c.start); t > now+maxAhead {
			c.origin, c.first = now, c.last
			t = now
		}
	}
	return t
}
