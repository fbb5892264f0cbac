package sendside

import "time"

// ackedRate is the rate the receiver acknowledged, in bit/s, over the
// feedback of about the last ackedWindow of arrival time: what got
// through, which a decrease is taken from.
const (
	ackedWindow = 500 * time.Millisecond
	ackedSlots  = 32
)

type ackedSpan struct {
	first, last         time.Duration // arrivals, receiver clock
	sentFirst, sentLast time.Time     // the same packets' sends
	bytes               int
}

type ackedRate struct {
	spans [ackedSlots]ackedSpan
	n     int // spans held
	next  int
}

// add records one feedback's received packets: their bytes, first and
// last arrival, and first and last send.
func (r *ackedRate) add(first, last time.Duration, sentFirst, sentLast time.Time, bytes int) {
	if bytes == 0 {
		return
	}
	r.spans[r.next] = ackedSpan{first, last, sentFirst, sentLast, bytes}
	r.next = (r.next + 1) % ackedSlots
	r.n = min(r.n+1, ackedSlots)
}

// rate is the acknowledged bit/s over the spans within ackedWindow of the
// newest one's end; 0 until they cover at least 100 ms.
func (r *ackedRate) rate() float64 {
	acked, _ := r.rates()
	return acked
}

// rates is rate, and the rate the same packets were sent at (0 if their
// sends span under 100 ms).
func (r *ackedRate) rates() (acked, sent float64) {
	if r.n == 0 {
		return 0, 0
	}
	newest := r.spans[(r.next-1+ackedSlots)%ackedSlots]
	start, bytes := newest.first, 0
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
	}
	span := newest.last - start
	if span < 100*time.Millisecond {
		return 0, 0
	}
	acked = float64(bytes) * 8 / span.Seconds()
	if d := sentEnd.Sub(sentStart); d >= 100*time.Millisecond {
		sent = float64(bytes) * 8 / d.Seconds()
	}
	return acked, sent
}
