package sendside

import "time"

// ackedRate is the rate the receiver acknowledged, in bit/s, over the
// feedback of about the last ackedWindow of arrival time: what got
// through, which a decrease is taken from.
//
// It counts a probe's padding in full: a probe that filled a link's
// queue is part of what the link carried, and a decrease from the media
// alone cut a capped subscriber to 0.85 of what the SFU had chosen to
// send it (lab scenario 2, 2026-12-07: under a 500 kbit/s cap, to 104
// kbit/s, both cameras at 3-4 fps for the cap's 20 s). It also keeps the
// media's share apart: the bound on the rate (rateAckedCap) is taken
// from that, as a short probe that a shaper's burst allowance let
// through says nothing of the link's rate (lab scenario 1: with the
// bound on all bytes, the estimate rose to 1.5 times a cluster that tc
// tbf's bucket carried above a 300 kbit/s cap, and the layers with it).
const (
	ackedWindow = 500 * time.Millisecond
	ackedSlots  = 32
)

type ackedSpan struct {
	first, last         time.Duration // arrivals, receiver clock
	sentFirst, sentLast time.Time     // the same packets' sends
	bytes, media        int           // all bytes, and those not of padding-only packets
}

type ackedRate struct {
	spans [ackedSlots]ackedSpan
	n     int // spans held
	next  int
}

// acked is what ackedRate measures, bit/s (0: not known yet).
type acked struct {
	all   float64 // every byte acknowledged
	media float64 // the bytes of packets that carried media
	sent  float64 // the rate the same packets (all) were sent at
}

// add records one feedback's received packets: their bytes (all, and
// the media's share), first and last arrival, and first and last send.
func (r *ackedRate) add(first, last time.Duration, sentFirst, sentLast time.Time, bytes, media int) {
	if bytes == 0 {
		return
	}
	r.spans[r.next] = ackedSpan{first, last, sentFirst, sentLast, bytes, media}
	r.next = (r.next + 1) % ackedSlots
	r.n = min(r.n+1, ackedSlots)
}

// rate is the acknowledged bit/s over the spans within ackedWindow of the
// newest one's end; 0 until they cover at least 100 ms.
func (r *ackedRate) rate() float64 { return r.rates().all }

// rates is rate, the media's share of it, and the rate the same packets
// were sent at (0 if their sends span under 100 ms).
func (r *ackedRate) rates() acked {
	if r.n == 0 {
		return acked{}
	}
	newest := r.spans[(r.next-1+ackedSlots)%ackedSlots]
	start, bytes, media := newest.first, 0, 0
	sentStart, sentEnd := newest.sentFirst, newest.sentLast
	for i := range r.n {
		s := r.spans[(r.next-1-i+2*ackedSlots)%ackedSlots]
		if newest.last-s.first > ackedWindow {
			break
		}
		start = min(start, s.first)
		if s.sentFirst.Before(sentStart) {
			sentStart = s.sentFirst
		}
		if s.sentLast.After(sentEnd) {
			sentEnd = s.sentLast
		}
		bytes += s.bytes
		media += s.media
	}
	span := newest.last - start
	if span < 100*time.Millisecond {
		return acked{}
	}
	a := acked{all: float64(bytes) * 8 / span.Seconds(), media: float64(media) * 8 / span.Seconds()}
	if d := sentEnd.Sub(sentStart); d >= 100*time.Millisecond {
		a.sent = float64(bytes) * 8 / d.Seconds()
	}
	return a
}
