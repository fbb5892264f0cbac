package sendside

import (
	"time"

	"github.com/parleyhq/parley/sfu/internal/sendhistory"
)

// Delay-based detection, after the GCC draft
// (draft-ietf-rmcat-gcc-02, section 5) and its trendline form in
// libwebrtc: packets sent within groupSpan of each other form a group;
// for two groups in a row, how much longer their arrivals were apart
// than their departures is the queue's growth between them. The growth
// is accumulated and smoothed, and the slope of a line through the last
// trendWindow points is the trend: positive while a queue builds.

const (
	// groupSpan: a burst the sender emits at once (a video frame's
	// packets) is one group; its packets' own spacing says nothing of
	// the path.
	groupSpan = 5 * time.Millisecond
	// A packet that arrives within burstSpan of the group before it,
	// and sooner after it than it was sent (the path or the receiver
	// held them and let them go together), joins that group, as long as
	// the group's arrivals span at most burstMax: a receiver short of
	// CPU reads its socket late and stamps what waited all at once, and
	// taken apart such a burst reads as a queue that builds and drains
	// (pion's GCC and libwebrtc merge it the same way).
	burstSpan = 5 * time.Millisecond
	burstMax  = 100 * time.Millisecond
	// trendWindow points make the slope; trendSmoothing is the
	// exponential smoothing of the accumulated delay they are taken of.
	trendWindow    = 20
	trendSmoothing = 0.9
	// trendGain and trendMaxDeltas scale the slope (delay growth per ms
	// of arrival time) into the detector's units: the more group deltas
	// seen, up to trendMaxDeltas, the more it is trusted.
	trendGain      = 4.0
	trendMaxDeltas = 60
)

// group is a run of packets sent within groupSpan.
type group struct {
	firstSent, lastSent       time.Time
	firstArrival, lastArrival time.Duration
	size                      int
}

// inBurst reports whether a belongs to g's burst (see burstSpan).
func (g *group) inBurst(a sendhistory.Ack) bool {
	arrived := a.Arrival - g.lastArrival
	return arrived <= burstSpan && arrived < a.Sent.Sub(g.lastSent) && a.Arrival-g.firstArrival < burstMax
}

type point struct{ x, y float64 } // arrival ms since the first group, smoothed delay ms

// trendline turns acknowledgments into the delay trend.
type trendline struct {
	cur, prev   group
	haveCur     bool
	havePrev    bool
	firstArr    time.Duration
	acc, smooth float64
	pts         [trendWindow]point
	n           int // points held, at most trendWindow
	next        int // where the next point goes
	deltas      int // group deltas seen, capped at trendMaxDeltas
}

// add feeds one acknowledged packet (received, timed, in sending order)
// and returns the new trend and the send-time gap between the groups it
// compared when it completed a group (ok), for the detector.
func (t *trendline) add(a sendhistory.Ack) (trend float64, sendGap time.Duration, ok bool) {
	if t.haveCur && !a.Sent.Before(t.cur.firstSent) && (a.Sent.Sub(t.cur.firstSent) <= groupSpan || t.cur.inBurst(a)) {
		t.cur.lastSent = a.Sent
		t.cur.lastArrival = max(t.cur.lastArrival, a.Arrival)
		t.cur.size += a.Size
		return 0, 0, false
	}
	if t.haveCur && a.Sent.Before(t.cur.firstSent) {
		return 0, 0, false // reordered across groups: leave it out
	}
	done := t.cur
	hadCur := t.haveCur
	t.cur = group{firstSent: a.Sent, lastSent: a.Sent, firstArrival: a.Arrival, lastArrival: a.Arrival, size: a.Size}
	t.haveCur = true
	if !hadCur {
		return 0, 0, false
	}
	if !t.havePrev {
		t.prev, t.havePrev, t.firstArr = done, true, done.lastArrival
		return 0, 0, false
	}
	sendGap = done.lastSent.Sub(t.prev.lastSent)
	recvGap := done.lastArrival - t.prev.lastArrival
	t.prev = done
	return t.update(ms(recvGap)-ms(sendGap), ms(done.lastArrival-t.firstArr)), sendGap, true
}

// update adds one delay variation (ms) at an arrival time (ms) and
// returns the scaled slope.
func (t *trendline) update(variation, arrival float64) float64 {
	t.deltas = min(t.deltas+1, trendMaxDeltas)
	t.acc += variation
	t.smooth = trendSmoothing*t.smooth + (1-trendSmoothing)*t.acc
	t.pts[t.next] = point{arrival, t.smooth}
	t.next = (t.next + 1) % trendWindow
	t.n = min(t.n+1, trendWindow)
	if t.n < trendWindow {
		return 0
	}
	return slope(t.pts[:]) * float64(t.deltas) * trendGain
}

// slope is the least-squares slope of y over x (0 if x does not vary).
func slope(pts []point) float64 {
	var sx, sy float64
	for _, p := range pts {
		sx += p.x
		sy += p.y
	}
	mx, my := sx/float64(len(pts)), sy/float64(len(pts))
	var num, den float64
	for _, p := range pts {
		num += (p.x - mx) * (p.y - my)
		den += (p.x - mx) * (p.x - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
