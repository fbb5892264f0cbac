package probe

import (
	"time"
)

// Config sets the Controller's pace; zero fields take the defaults.
type Config struct {
	// Interval is the wait before the next cluster after one that
	// failed, doubled after each further failure up to MaxInterval. A
	// cluster that succeeded is followed at once by the next step up
	// (as long as more is wanted), so a climb takes a few hundred
	// milliseconds per doubling.
	Interval, MaxInterval time.Duration
	// Duration is how long a cluster's padding is sent.
	Duration time.Duration
	// Growth: a cluster aims at Growth times the current estimate (and
	// never above what is wanted).
	Growth float64
	// Settle is how long after a cluster ends its feedback is waited
	// for before it is judged with what has arrived.
	Settle time.Duration
	// MinPadding is the least padding rate (bit/s) worth a cluster:
	// enough packets over Duration for its rates to be measured.
	MinPadding int
	// Max is the estimator's ceiling, bit/s (0: none). What is wanted
	// above it is not probed for: the estimate never rises past it, so
	// clusters would go on for as long as the call does. A 10 x 10 load
	// run (24 Mbit/s wanted per subscriber, a 20 Mbit/s ceiling) sent
	// a cluster per subscriber every 0.8 s, a third as many padding
	// packets as media, for nothing.
	Max int
}

// Defaults for Config's zero fields.
const (
	DefaultInterval = time.Second
	// DefaultMaxInterval bounds how late a lifted cap is found: nothing
	// but a cluster tells a link that carries more than is sent. At 8 s,
	// in lab scenario 2 (2026-12-06 23:00) the step from 500 kbit/s to
	// 3 Mbit/s came 2 s after two failures under the cap, the next
	// cluster 6 s after it, and the subscriber was back above the low
	// layer 7 s after the step (5 s wanted); at 4 s, 3.8 s after it.
	// Scenario 1 (a 300 kbit/s cap for 60 s, clusters failing twice as
	// often) still kept its freezes at 0.00 s in two runs.
	//
	// 3 s since 2026-12-07: a cluster failing under a 500 kbit/s cap
	// half a second before it was lifted left the next one 4 s after
	// it, and the layers came up 5.8 s after the lift (5 s wanted).
	DefaultMaxInterval = 3 * time.Second
	// DefaultDuration: shorter clusters for more padding (at most 6 KB
	// each, down to 40 ms) were tried against GCC's estimate floating
	// above the media under a cap; in the vnet TestProbeAfterCapLifted
	// the estimate under the 300 kbit/s cap then rose to 600-870 kbit/s
	// in most runs (250-350 before): a short cluster passes on a
	// shaper's bucket far more often.
	//
	// 400 ms since 2026-12-07, judged over the whole cluster and over its
	// second half: a token-bucket shaper (tc tbf in the lab, 6.4 KB at
	// 300 and 500 kbit/s) carries the start of a cluster above its rate
	// as sent, and 200 ms at up to 1.5 times the rate passed whole. The
	// floor such a cluster raised was false, and the next cluster, at
	// twice it, overflowed the link: in lab scenario 2 (2026-12-07 02:00)
	// a cluster at 722 kbit/s passed under a 500 kbit/s cap, the next at
	// 1,445 lost 39 of its 106 packets and both cameras froze for 0.5 s.
	// Twice as long, a cluster's second half arrives a tenth slower than
	// sent (20 ms of queue by its end) once its excess over the link
	// is half the link's rate at 300 kbit/s, a third at 500 (at 200 ms
	// over the whole cluster: 0.95 and 0.6 times); below that its false
	// floor costs little (floorUsable of it is about the link).
	DefaultDuration = 400 * time.Millisecond
	// DefaultGrowth: 1.5 with 400 ms clusters puts as many bytes above
	// the estimate into a link's queue as 2 did with 200 ms ones. At 2
	// a 400 ms cluster at 1.6 Mbit/s under a 1 Mbit/s cap lost 18 of its
	// 175 packets, and a camera froze for 0.6 s (lab scenario 2,
	// 2026-12-07 02:19:53). A climb after a lifted cap takes a step or
	// two more (each about half a second).
	DefaultGrowth = 1.5
	DefaultSettle = 500 * time.Millisecond
	// DefaultMinPadding: 2.5 KB in 200 ms, nine padding packets of 255
	// bytes and their headers. Clusters of two to four packets (a step
	// of 1.25 times the estimate over media that fills it) were judged
	// "no data" (under five packets reported), and each doubled the
	// back-off: in the lab the first cluster after a cap was lifted
	// waited 8 s for it (scenario 1, 2026-12-06 16:56:20). Such a
	// cluster is not sent at all; raising its padding to the minimum
	// instead put more into a full link's queue (one run, 6.5 s of
	// freezes).
	DefaultMinPadding = 100_000
)

// Thresholds of the judgement.
const (
	// A cluster succeeds when its packets arrived at least at this
	// fraction of the rate they were sent at (no queue built up)...
	minRateRatio = 0.9
	// ...and at most this fraction of them was lost.
	maxLoss = 0.05
	// A cluster is judged once this fraction of its packets is reported.
	reportedEnough = 0.95
	// Probing is worth it only when what is wanted exceeds the estimate
	// by this factor, and a cluster aims at least this far above it
	// (the caller's Wanted carries the margin the layer choice needs).
	minStep = 1.05
	// After a failure, clusters aim below the failed target by this
	// factor until the back-off allows that target again.
	minGain = 1.2
	// The estimate falling below this fraction of what it was when a
	// cluster started aborts the cluster.
	fallFactor = 0.9
	// The estimator rising this far above its value at the last failure
	// ends the back-off: a cap was lifted, say.
	estimatorRecovered = 1.25
	// carefulGrowth is the growth of clusters for a while after a
	// success above a failed target (see Controller.carefulUntil).
	carefulGrowth = 1.5
	carefulFor    = 2 * time.Second
	// floorGrowth is the growth of a cluster that builds on a probed
	// floor one cluster raised above the estimator's own estimate: that
	// is one short cluster's word, which a shaper's burst allowance may
	// have given (see Controller.carefulUntil). At twice a false floor
	// the next cluster's excess over the link is the bucket and the
	// queue together, and it overflows (lab scenario 1, 2026-12-06
	// 14:29: 409 kbit/s passed under a 300 kbit/s cap, 818 overflowed);
	// at 1.5 times it the queue holds what the bucket does not, and the
	// cluster fails. From a floor that a second cluster raised further
	// the climb doubles again: a shaper's allowance is spent by then
	// (the second cluster follows the first at once), and a climb after
	// a cap was lifted takes one step more, not one more per doubling.
	floorGrowth = 1.5
	// While the media fills the estimate (Sending at least fullLink of
	// it), the link may be full already, and a cluster's whole padding
	// goes into its queue: clusters then aim at most fullLinkGrowth
	// above what is carried. At twice the estimate, on a 300
	// kbit/s cap with 288 kbit/s of media, one cluster overflowed the
	// link's 200 ms queue and cost both cameras 0.8 s of freezes (lab
	// scenario 1, 2026-12-06 16:30:08); at 1.25 times it adds 50 ms to
	// the queue at most, enough for the cluster to arrive slower than
	// sent. With coarse layers the media is mostly well below the
	// estimate (a subscriber on 320x180 with 1 Mbit/s to spare), and
	// the cluster first fills what it leaves.
	fullLink       = 0.9
	fullLinkGrowth = 1.25
	// floorUsable: the layer choice spends this fraction of the probed
	// floor (Estimate). The floor is the rate one cluster got through,
	// right at the link's capacity at best, and above it by whatever a
	// shaper let through in a burst; layers that cost all of it leave
	// no room for a key frame or a publisher's surge. GCC keeps the
	// same headroom below a rate it measured when it decreases (0.85):
	// in the lab a 327 kbit/s floor (a cluster 17% above the estimate)
	// under a 300 kbit/s cap gave two cameras back their full frame
	// rate, and the link queued and lost 1.5 s later (scenario 1,
	// 2026-12-06 16:21:12, 2.6 s of freezes).
	floorUsable = 0.85
	// quietAfterCongestion: no cluster starts until the estimator has
	// shown no congestion for this long. A link that just shrank
	// signals congestion for a second or two while the layers come
	// down; clusters at once after it, at 1.5-2 times the fallen
	// estimate, overflowed the new link's queue and cost the
	// subscriber's video the freezes the layer change had avoided (lab
	// scenario 1, 2026-12-06: 0.3-1.1 s per camera within 4 s of a 300
	// kbit/s cap, in two runs of eight). A cap lifted later is probed
	// as before: the congestion ended long before.
	//
	// Congestion a cluster caused itself (while in flight, or within
	// ownCongestion of a failure) does not start the wait: the back-off
	// paces the next cluster, and the link has not changed. Under lab
	// scenario 2's 500 kbit/s cap a cluster that failed 0.4 s before
	// the cap was lifted kept the next one 4.1 s away (the back-off
	// alone allowed one after 1 s, below the failed target), and the
	// layers came back up 5.8 s after the lift (5 s wanted; 2026-12-07
	// 01:57).
	quietAfterCongestion = 3 * time.Second
	ownCongestion        = time.Second
)

// Input is the state of one subscriber connection, sampled by the
// caller at each Update.
type Input struct {
	// Estimate is the bandwidth estimator's own estimate, bit/s.
	Estimate int
	// Wanted is what the subscriber's tiles would take with bandwidth
	// to spare, bit/s (0: nothing, no probing).
	Wanted int
	// Sending is the media bitrate sent to the subscriber now, bit/s.
	Sending int
	// Congested: the estimator sees queueing (delay overuse) or loss.
	Congested bool
}

// Outcome is how a cluster ended.
type Outcome uint8

const (
	OutcomeNone    Outcome = iota
	OutcomeSuccess         // delivered at the rate sent: the floor rises
	OutcomeLimited         // arrived slower than sent or lost packets: the link is full
	OutcomeAborted         // congestion showed while it was sent
	OutcomeNoData          // too little feedback to judge
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeLimited:
		return "limited"
	case OutcomeAborted:
		return "aborted"
	case OutcomeNoData:
		return "no_data"
	}
	return "none"
}

// Cluster is one probe the caller is to send: padding at PadRate bit/s
// for Duration, on top of the media, packets recorded under ID.
type Cluster struct {
	ID       uint32
	Target   int // total rate aimed at, bit/s
	PadRate  int // padding rate, bit/s
	Duration time.Duration
}

// Controller decides, for one subscriber connection, when to probe and
// what the probes showed. Its result is Estimate: the estimator's own,
// or floorUsable of the probed floor while that is higher and nothing
// shows congestion. It is not safe for concurrent use; the clock is the
// caller's.
//
// The floor exists because pion's GCC takes no estimate from outside:
// it keeps its own and raises it only as fast as its increase rules
// allow. The floor lets the layer choice use the probed rate at once;
// the media then sent at that rate lets GCC climb to it, and the floor
// goes as soon as GCC reaches it, or at the first sign of congestion
// (Input.Congested: GCC's delay overuse or loss), whichever is first.
// GCC's estimate merely falling does not drop it: pion's GCC falls to
// 0.85 times the rate it measured acknowledged at any overuse it
// detects, and it counts a padding packet as its header only, so a
// probe that the link carried can still knock it down; the floor is the
// probe's own measurement, and real congestion shows as loss or queueing
// soon enough.
type Controller struct {
	cfg Config

	floor int // probed floor, bit/s (0: none)
	// floorWins is how many successes in a row raised the floor since
	// it last rose from the estimator's estimate (see floorGrowth).
	floorWins int
	interval  time.Duration
	next      time.Time // no cluster starts before
	// failedAt is the lowest target that failed since the last success
	// above it (0: none). Until failUntil (the back-off) clusters aim
	// below it by the margin a success must clear; a smaller step may
	// still start after Interval. So a link that carries a little more
	// than the estimate but not twice it is probed up to what it
	// carries, and the step that failed is retried only as the back-off
	// allows, however many smaller steps succeed meanwhile.
	failedAt  int
	failUntil time.Time
	// estAtFail is the highest estimate at a failure since the back-off
	// began (the floor's, if higher): once the estimator has risen well
	// above that by itself (estimatorRecovered), and to within minGain
	// of failedAt, the link has changed and the back-off starts afresh. The floor counts
	// because pion's GCC swings widely below it on a link that does not
	// change; failedAt counts because under a cap GCC swings by half
	// and more from one second to the next (100-250 kbit/s on a 300
	// kbit/s link in the lab), and each swing up used to end the
	// back-off: a cluster at twice the estimate then followed the next
	// success at once, overflowed the link's queue and cost the
	// subscriber's video a freeze (three in a minute in the lab run of
	// 2026-12-05 13:02). The highest, not the last: a failure at the
	// bottom of a swing (GCC at 160 kbit/s under a 300 kbit/s cap) made
	// the next swing up (to 270) look like a recovery, and a cluster at
	// twice it overflowed the link (lab scenario 1, 2026-12-05 19:19).
	estAtFail int
	// carefulUntil: a success above a target that had failed (new
	// ground, which ends the back-off) may be the link changing, or a
	// short cluster absorbed by a shaper's burst allowance and queue
	// (tc tbf's in the lab: a 200 ms cluster at 1.6 times a 300 kbit/s
	// cap arrived as sent). Until then clusters grow by carefulGrowth,
	// not Growth: at twice the estimate, the step after such a false
	// success overflowed the capped link's queue and cost the
	// subscriber's video a freeze; after a real change the climb takes
	// a step or two more. (1.2 times was tried, after a step at 1.5
	// times 523 kbit/s overflowed a 300 kbit/s cap in the lab: the
	// climb after a cap was lifted took five steps instead of three,
	// and the full-link rule, fullLinkGrowth, covers most such steps.)
	carefulUntil time.Time

	// quietUntil: no cluster starts before (quietAfterCongestion after
	// the last congestion seen).
	quietUntil time.Time
	// ownUntil: congestion before it is the last failed cluster's (see
	// ownCongestion).
	ownUntil time.Time

	// The cluster in flight (cur.ID 0: none), from start until judged.
	cur      Cluster
	end      time.Time // when its padding ends (ended, if aborted)
	startEst int
	aborted  bool
	lastID   uint32
}

// NewController returns a Controller with no floor that may probe at
// once.
func NewController(cfg Config) *Controller {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxInterval < cfg.Interval {
		cfg.MaxInterval = max(DefaultMaxInterval, cfg.Interval)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Growth <= 1 {
		cfg.Growth = DefaultGrowth
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.MinPadding <= 0 {
		cfg.MinPadding = DefaultMinPadding
	}
	return &Controller{cfg: cfg}
}

// Estimate is the bandwidth to use for the layer choice: the
// estimator's, or floorUsable of the probed floor while that is higher.
func (c *Controller) Estimate(in Input) int {
	return max(in.Estimate, int(floorUsable*float64(c.floor)))
}

// carried is the highest rate seen carried: the estimator's, or the
// probed floor. Clusters aim above it.
func (c *Controller) carried(in Input) int { return max(in.Estimate, c.floor) }

// Floor is the probed floor, 0 for none.
func (c *Controller) Floor() int { return c.floor }

// Probing reports whether a cluster is being sent or waits for its
// feedback.
func (c *Controller) Probing() bool { return c.cur.ID != 0 }

// Sending reports whether the cluster's padding is still to be sent at
// now.
func (c *Controller) Sending(now time.Time) bool {
	return c.cur.ID != 0 && !c.aborted && now.Before(c.end)
}

// Update takes the connection's state at now. It drops the floor on
// congestion or once the estimator has caught up, ends the back-off
// when the estimator has recovered by itself, aborts a cluster in
// flight on congestion or a falling estimate, and returns a cluster to
// start (nil for none, and none within quietAfterCongestion of the last
// congestion): at Growth times the estimate, at most what is wanted,
// below a recent failure.
func (c *Controller) Update(now time.Time, in Input) *Cluster {
	if in.Congested && c.cur.ID == 0 && !now.Before(c.ownUntil) {
		c.quietUntil = now.Add(quietAfterCongestion)
	}
	if c.floor > 0 {
		switch {
		case in.Estimate >= c.floor:
			c.floor, c.floorWins = 0, 0 // caught up: GCC's own estimate is the better one now
		case in.Congested:
			c.failed(now, in, c.floor)
			c.floor, c.floorWins = 0, 0
		}
	}
	if c.estAtFail > 0 && float64(in.Estimate) >= estimatorRecovered*float64(c.estAtFail) &&
		float64(in.Estimate)*minGain >= float64(c.failedAt) && !in.Congested {
		c.interval, c.failedAt, c.estAtFail = 0, 0, 0
		c.next, c.failUntil = now, now
	}
	if c.cur.ID != 0 {
		if !c.aborted && (in.Congested || in.Estimate < int(fallFactor*float64(c.startEst))) {
			// No more padding; the feedback about what was sent is
			// waited for from now.
			c.aborted, c.end = true, now
		}
		return nil
	}
	if c.cfg.Max > 0 {
		in.Wanted = min(in.Wanted, c.cfg.Max)
	}
	if in.Congested || in.Wanted < int(minStep*float64(c.Estimate(in))) || now.Before(c.next) || now.Before(c.quietUntil) {
		return nil
	}
	est := c.carried(in)
	growth := c.cfg.Growth
	if c.floor > in.Estimate && c.floorWins < 2 {
		growth = min(growth, floorGrowth)
	}
	if float64(in.Sending) >= fullLink*float64(est) {
		growth = min(growth, fullLinkGrowth)
	}
	if now.Before(c.carefulUntil) {
		growth = min(growth, carefulGrowth)
	}
	// A floor this high lets the layer choice spend what is wanted.
	goal := int(float64(in.Wanted) / floorUsable)
	target := min(goal, int(growth*float64(est)))
	if c.failedAt > 0 && now.Before(c.failUntil) {
		// Below the failure, by the margin a success must clear.
		target = min(target, int(float64(c.failedAt)/minGain))
	}
	// The padding fills the gap between the media and the target; the
	// media may be well below the estimate (a publisher sending less
	// than its layer's usual rate), so it is measured, not assumed.
	pad := target - in.Sending
	if least := in.Sending + c.cfg.MinPadding; pad < c.cfg.MinPadding && growth == c.cfg.Growth && least <= goal &&
		(c.failedAt == 0 || float64(least)*minGain <= float64(c.failedAt)) {
		// At low rates a step of Growth carries too few packets to
		// judge; the least padding that does is a small excess in
		// bytes (5 KB over a cluster). At 1.5 times a 100 kbit/s
		// estimate nothing was ever sent, and a subscriber under a cap
		// below the lowest layer never got its frames back once the
		// cap was lifted (sfu TestTemporalLayersUnderCap). Not so when
		// the growth is held back (a full link, a floor one cluster
		// raised, new ground), nor up to a recent failure: that holding
		// back is the point.
		target, pad = least, c.cfg.MinPadding
	}
	if pad < c.cfg.MinPadding || pad < int((minStep-1)*float64(est)) || target < int(minStep*float64(est)) {
		return nil
	}
	c.lastID++
	if c.lastID == 0 {
		c.lastID = 1
	}
	c.cur = Cluster{ID: c.lastID, Target: target, PadRate: pad, Duration: c.cfg.Duration}
	c.end, c.startEst, c.aborted = now.Add(c.cfg.Duration), in.Estimate, false
	cl := c.cur
	return &cl
}

// Judge decides on the cluster in flight once its feedback is in (or
// Settle has passed since it ended), given what the Recorder says about
// it. It returns OutcomeNone while it still waits. On success the floor
// rises to the rate the cluster delivered and the next step may start
// at once; a failure doubles the wait (see failedAt).
func (c *Controller) Judge(now time.Time, in Input, r Result) Outcome {
	if c.cur.ID == 0 {
		return OutcomeNone
	}
	if now.Before(c.end) {
		return OutcomeNone
	}
	complete := r.Sent > 0 && float64(r.Reported()) >= reportedEnough*float64(r.Sent)
	if !complete && now.Sub(c.end) < c.cfg.Settle {
		return OutcomeNone
	}
	if c.aborted {
		if delivered(r) {
			// What was sent arrived as sent: the estimator's fall may
			// not have been this link running full (see Controller),
			// so the target is not marked failed; the next cluster
			// waits Interval (longer if earlier failures still count).
			// Nor does the floor rise on it: the part sent is shorter
			// than a cluster, and a shaper's bucket carries it whole
			// (lab scenario 1, 2026-12-07 02:18:50: 100 ms at 620
			// kbit/s over a 300 kbit/s cap, and the next cluster, at
			// 1.5 times that floor, lost 23 of its 81 packets and cost
			// both cameras a second of freezes).
			// Nor does the wait double: after failures under a cap that
			// put the next cluster 4 s away from a lifted one (lab
			// scenario 2, 2026-12-07 02:42:52: the way up 6 s after
			// the lift).
			c.cur, c.aborted = Cluster{}, false
			c.ownUntil = now.Add(ownCongestion)
			if c.failedAt == 0 {
				c.interval = 0
			}
			c.next = now.Add(c.cfg.Interval)
			return OutcomeAborted
		}
		c.finish(now, in, false)
		return OutcomeAborted
	}
	if r.Reported() < minPackets || r.SendRate == 0 {
		// Nothing learnt about the target (the feedback is late or was
		// lost: see sfu/probe.go on feedback about RTX packets), so it
		// is not marked failed; the wait still doubles, in case the
		// feedback is late because the link is queueing.
		c.cur, c.aborted = Cluster{}, false
		c.backOff(now)
		c.estAtFail = max(c.estAtFail, c.carried(in))
		return OutcomeNoData
	}
	if !delivered(r) {
		c.finish(now, in, false)
		return OutcomeLimited
	}
	c.raise(now, in, r)
	c.finish(now, in, true)
	return OutcomeSuccess
}

// raise moves the floor up to what the cluster in flight delivered: its
// padding arrived as fast as it left, so the link carried the media and
// the padding together, the target as far as the padding reached it
// (the writer may have sent less than asked).
func (c *Controller) raise(now time.Time, in Input, r Result) {
	achieved := min(in.Sending+r.SendRate, c.cur.Target)
	if achieved > c.carried(in) {
		if c.floor <= in.Estimate {
			c.floorWins = 0
		}
		c.floor = achieved
		c.floorWins++
	}
	if achieved >= c.failedAt {
		if c.failedAt > 0 {
			c.carefulUntil = now.Add(carefulFor)
		}
		c.failedAt, c.estAtFail = 0, 0 // new ground: the back-off starts afresh
	}
}

// delivered reports whether r shows its packets arrived at the rate
// they were sent, with little loss: all of them, and those of the
// second half (when there are enough of them to tell), which a shaper's
// bucket no longer carries (see DefaultDuration).
func delivered(r Result) bool {
	if r.Reported() < minPackets || r.SendRate == 0 || r.RecvRate == 0 {
		return false
	}
	if r.TailSendRate > 0 && float64(r.TailRecvRate) < minRateRatio*float64(r.TailSendRate) {
		return false
	}
	loss := float64(r.Lost) / float64(r.Reported())
	return loss <= maxLoss && float64(r.RecvRate) >= minRateRatio*float64(r.SendRate)
}

func (c *Controller) finish(now time.Time, in Input, ok bool) {
	target := c.cur.Target
	c.cur = Cluster{}
	c.aborted = false
	if ok {
		if c.failedAt == 0 {
			c.interval = 0
		}
		c.next = now
		return
	}
	c.ownUntil = now.Add(ownCongestion)
	c.failed(now, in, target)
}

// failed records a failure at target: the back-off doubles for targets
// that high, smaller steps may follow after Interval.
func (c *Controller) failed(now time.Time, in Input, target int) {
	c.backOff(now)
	c.failUntil = c.next
	if c.failedAt == 0 || target < c.failedAt {
		c.failedAt = target
	}
	c.next = now.Add(c.cfg.Interval)
	c.estAtFail = max(c.estAtFail, c.carried(in))
}

// backOff makes the next cluster wait Interval after a success, twice
// the last wait after a failure.
func (c *Controller) backOff(now time.Time) {
	c.interval = min(max(2*c.interval, c.cfg.Interval), c.cfg.MaxInterval)
	c.next = now.Add(c.interval)
}

// Current is the cluster in flight (ID 0: none).
func (c *Controller) Current() Cluster { return c.cur }
