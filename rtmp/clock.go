package rtmp

// rtmpClock unwraps 32-bit RTMP millisecond timestamps into a 64-bit
// timeline and maps them onto an RTP clock. RTMP timestamps wrap at 2^32 ms
// (~49.7 days); a jump backwards of less than half the range is treated as
// a (small) step back rather than a wrap, so a publisher's jitter does not
// fling the timeline forward by 49 days.
type rtmpClock struct {
	started bool
	last    uint32
	ms      int64 // unwrapped ms of the last input
	base    int64 // unwrapped ms of the first input
	rate    int64 // RTP clock rate
	offset  uint32
}

func newRTMPClock(rate int64, offset uint32) *rtmpClock {
	return &rtmpClock{rate: rate, offset: offset}
}

// unwrap advances the timeline with a new RTMP timestamp and returns the
// milliseconds since the first timestamp.
func (c *rtmpClock) unwrap(ts uint32) int64 {
	if !c.started {
		c.started = true
		c.last = ts
		c.ms = int64(ts)
		c.base = c.ms
		return 0
	}
	c.ms += int64(int32(ts - c.last))
	c.last = ts
	return c.ms - c.base
}

// rtp maps a position on the timeline (ms since start, plus a composition
// offset in ms) to an RTP timestamp; uint32 arithmetic wraps as RTP does.
func (c *rtmpClock) rtp(ms int64) uint32 {
	return c.offset + uint32(ms*c.rate/1000)
}
