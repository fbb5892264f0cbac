package sfu

import (
	"time"
)

// Pacing a congested subscriber's send queue.
//
// The SFU forwards packets as they come, which is right while the
// subscriber's link has room: the layer choice keeps the rate under the
// estimate, and a pacer on every packet would cost a clock read and a
// timer each. A link that has just run full is different: its queue is
// short of room, and a key frame sent at once (the lower layer's, which
// the switch down waits for; or two cameras' at a time) arrives at the
// bottleneck as one burst of 10-30 KB where a 300 kbit/s link's router
// queues 7.5 KB (200 ms). Its tail is dropped, the repairs meet the same
// queue, and the picture the switch was to save freezes for seconds
// (lab scenario 1: "a 320x180 key frame lost despite the hold").
//
// So while the estimator sees the link congested, and for paceLinger
// after (GCC's overuse signal lasts one update and is sampled twice a
// second), the writer spaces packets at paceFactor times the
// estimator's target: a burst then leaves about as fast as the link
// drains it. A backlog is never held longer than paceMaxDelay: the pace
// rises to clear it in that time, so a queue of media waiting on the pace
// does not turn into seconds of latency.
const (
	// paceFactor: libwebrtc's own pacing factor. A key frame of 20 KB
	// then takes about 250 ms to leave at a 300 kbit/s link's target
	// (the link drains 9 KB of it meanwhile, and its router's queue
	// holds the rest), and a subscriber the estimator wrongly sees
	// congested (GCC reads CPU stalls as queueing: an uncapped
	// subscriber at 2.2 Mbit/s, target 0.96 Mbit/s, lab scenario 1) is
	// not slowed below what it receives; 1.5 would have been.
	paceFactor = 2.5
	// paceLinger: pacing lasts this long after the last congestion seen.
	paceLinger = 3 * time.Second
	// paceBurst: packets within this much of the pace go at once, so a
	// small frame is not spread out and the writer does not sleep for
	// each packet.
	paceBurst = 10 * time.Millisecond
	// paceMaxDelay bounds how long the queue's backlog may wait on the
	// pace.
	paceMaxDelay = 400 * time.Millisecond
	// paceBacklogBytes is what a queued packet is counted as when the
	// backlog is sized: video packets are close to the MTU.
	paceBacklogBytes = 1200
)

// pacer spaces packets at a rate: after each packet it says how long
// the writer waits before the next. The writer's goroutine owns it.
type pacer struct {
	// at is when the bytes sent so far have left at the pace (never
	// before now: an idle link gives no credit beyond paceBurst).
	at time.Time
	// boost is the rate that clears the largest backlog seen since the
	// queue was last empty within paceMaxDelay (0: none). Held until the
	// queue empties: recomputed from a shrinking backlog it would fall
	// with it, and the last packets would wait ever longer.
	boost int64
}

// after accounts for n bytes sent at now, pacing at rate bit/s with
// backlog packets still queued, and returns how long to wait before
// sending the next one.
func (pc *pacer) after(now time.Time, n, backlog int, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	// The backlog leaves within paceMaxDelay at the least.
	if backlog == 0 {
		pc.boost = 0
	} else if clear := int64(backlog) * paceBacklogBytes * 8 * int64(time.Second) / int64(paceMaxDelay); clear > pc.boost {
		pc.boost = clear
	}
	rate = max(rate, pc.boost)
	if pc.at.Before(now) {
		pc.at = now
	}
	pc.at = pc.at.Add(time.Duration(int64(n) * 8 * int64(time.Second) / rate))
	if ahead := pc.at.Sub(now); ahead > paceBurst {
		return ahead - paceBurst
	}
	return 0
}

// paceRate is the rate a subscriber's writer paces at, bit/s (0: not
// paced): paceFactor times the estimator's target while the link was
// congested less than paceLinger ago.
func paceRate(target int, congestedAt, now time.Time) int64 {
	if target <= 0 || congestedAt.IsZero() || now.Sub(congestedAt) >= paceLinger {
		return 0
	}
	return int64(paceFactor * float64(target))
}
