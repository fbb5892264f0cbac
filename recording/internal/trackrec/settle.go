package trackrec

import (
	"time"

	"github.com/pion/rtp"
)

// A track's place on the recording's clock comes from when its packets
// arrived. The first packet's arrival alone is a poor anchor: on a busy
// machine it can be held up by a stall (0.5-1 s seen) and then the whole
// track sits that much after its media came, past the recording's end for
// someone who joined late. The packets that follow it catch up in a burst
// and then arrive on time, so the anchor is the earliest of "arrival less
// the media's own time since the first packet" over the track's first
// packets: the least-delayed of them. The packets are held meanwhile,
// then written with that anchor; the anchor does not move after, so media
// fed faster than real time is never squeezed.
const (
	// settleWindow: how long after the first packet's arrival the anchor
	// is still looked for.
	settleWindow = 2 * time.Second
	// maxSettleHeld bounds the packets held meanwhile (a burst; about
	// 5 MB of video at most).
	maxSettleHeld = 4096
	// maxSettleEarlier: how much earlier than the first packet's arrival
	// the anchor may move. A stall longer than this is not a stall but a
	// publisher's clock jumping, which the timeline handles on its own.
	maxSettleEarlier = 5 * time.Second
)

type heldPacket struct {
	p       *rtp.Packet
	arrival time.Time
}

// settling holds a track's first packets until its anchor is known.
type settling struct {
	done         bool
	started      bool
	firstTS      uint32
	firstArrival time.Time
	anchor       time.Time // the earliest arrival less media time so far
	held         []heldPacket
}

// hold takes p, which arrived at arrival. While the anchor is being looked
// for it keeps p and returns nil; once found it returns every held packet
// and p, in the order they came, for the caller to write after
// anchoring its timeline with anchorOn.
func (s *settling) hold(p *rtp.Packet, arrival time.Time, rate int64) []heldPacket {
	if !s.started {
		s.started = true
		s.firstTS, s.firstArrival, s.anchor = p.Timestamp, arrival, arrival
	}
	// The media's own time since the first packet; a packet reordered
	// before it counts back from it.
	since := time.Duration(int64(int32(p.Timestamp-s.firstTS)) * int64(time.Second) / rate)
	if a := arrival.Add(-since); a.Before(s.anchor) && !a.Before(s.firstArrival.Add(-maxSettleEarlier)) {
		s.anchor = a
	}
	s.held = append(s.held, heldPacket{p, arrival})
	if arrival.Sub(s.firstArrival) < settleWindow && len(s.held) < maxSettleHeld {
		return nil
	}
	return s.release()
}

// release ends the wait (the track closes, or the window passed) and
// returns what was held.
func (s *settling) release() []heldPacket {
	s.done = true
	held := s.held
	s.held = nil
	return held
}

// anchorOn places the first packet's timestamp at the anchor found.
func (s *settling) anchorOn(c *timeline) {
	if s.started {
		c.anchor(s.firstTS, s.anchor)
	}
}
