package probe

import (
	"time"
)

// Config sets the Controller's pace; zero fields take the defaults.
type Config struct {
	// Interval is the shortest time from the end of one cluster's
	// judgement to the start of the next after a success; failures
	// double it, up to MaxInterval.
	Interval, MaxInterval time.Duration
	// Duration is how long a cluster's padding is sent.
	Duration time.Duration
	// Growth: a cluster aims at Growth times the current estimate (and
	// never above what is wanted).
	Growth float64
	// Settle is how long after a cluster ends its feedback is waited
	// for before it is judged with what has arrived.
	Settle time.Duration
}

// Defaults for Config's zero fields.
const (
	DefaultInterval    = time.Second
	DefaultMaxInterval = 30 * time.Second
	DefaultDuration    = 200 * time.Millisecond
	DefaultGrowth      = 2.0
	DefaultSettle      = time.Second
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
	// by this factor, and a cluster aims at least this far above it.
	minGain = 1.2
	// The estimate falling below this fraction of its best since the
	// floor was set (or since a cluster started) is congestion.
	fallFactor = 0.9
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
// or the probed floor while that is higher and nothing shows
// congestion. It is not safe for concurrent use; the clock is the
// caller's.
//
// The floor exists because pion's GCC takes no estimate from outside:
// it keeps its own and raises it only as fast as its increase rules
// allow. The floor lets the layer choice use the probed rate at once;
// the media then sent at that rate lets GCC climb to it, and the floor
// goes as soon as GCC reaches it, or at the first sign of congestion
// (GCC's overuse or loss, or its estimate falling), whichever is first.
type Controller struct {
	cfg Config

	floor    int // probed floor, bit/s (0: none)
	best     int // the estimator's best since the floor was set
	interval time.Duration
	next     time.Time // no cluster starts before

	// The cluster in flight (cur.ID 0: none), from start until judged.
	cur        Cluster
	start, end time.Time
	startEst   int
	aborted    bool
	lastID     uint32
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
	return &Controller{cfg: cfg, interval: cfg.Interval}
}

// Estimate is the bandwidth to use for the layer choice: the
// estimator's, or the probed floor while it is higher.
func (c *Controller) Estimate(in Input) int { return max(in.Estimate, c.floor) }

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
// congestion or once the estimator has caught up, aborts a cluster in
// flight on congestion, and returns a cluster to start (nil for none).
func (c *Controller) Update(now time.Time, in Input) *Cluster {
	if c.floor > 0 {
		c.best = max(c.best, in.Estimate)
		switch {
		case in.Estimate >= c.floor:
			c.floor = 0 // caught up: GCC's own estimate is the better one now
		case in.Congested || in.Estimate < int(fallFactor*float64(c.best)):
			c.floor = 0
			c.backOff(now)
		}
	}
	if c.cur.ID != 0 {
		if !c.aborted && (in.Congested || in.Estimate < int(fallFactor*float64(c.startEst))) {
			c.aborted = true
		}
		return nil
	}
	est := c.Estimate(in)
	if in.Congested || in.Wanted < int(minGain*float64(est)) || now.Before(c.next) {
		return nil
	}
	target := min(in.Wanted, int(c.cfg.Growth*float64(est)))
	// The padding fills the gap between the media and the target; the
	// media may be well below the estimate (a publisher sending less
	// than its layer's usual rate), so it is measured, not assumed.
	pad := target - in.Sending
	if pad < int((minGain-1)*float64(est)) {
		return nil
	}
	c.lastID++
	if c.lastID == 0 {
		c.lastID = 1
	}
	c.cur = Cluster{ID: c.lastID, Target: target, PadRate: pad, Duration: c.cfg.Duration}
	c.start, c.end, c.startEst, c.aborted = now, now.Add(c.cfg.Duration), in.Estimate, false
	cl := c.cur
	return &cl
}

// Judge decides on the cluster in flight once its feedback is in (or
// Settle has passed since it ended), given what the Recorder says about
// it. It returns OutcomeNone while it still waits. On success the floor
// rises to the rate the cluster delivered; otherwise the next cluster
// waits twice as long as the last.
func (c *Controller) Judge(now time.Time, in Input, r Result) Outcome {
	if c.cur.ID == 0 {
		return OutcomeNone
	}
	if c.aborted {
		c.finish(now, false)
		return OutcomeAborted
	}
	if now.Before(c.end) {
		return OutcomeNone
	}
	complete := r.Sent > 0 && float64(r.Reported()) >= reportedEnough*float64(r.Sent)
	if !complete && now.Sub(c.end) < c.cfg.Settle {
		return OutcomeNone
	}
	if r.Reported() < minPackets || r.SendRate == 0 {
		c.finish(now, false)
		return OutcomeNoData
	}
	loss := float64(r.Lost) / float64(r.Reported())
	ratio := float64(r.RecvRate) / float64(r.SendRate)
	if loss > maxLoss || ratio < minRateRatio || r.RecvRate == 0 {
		c.finish(now, false)
		return OutcomeLimited
	}
	// The padding arrived as fast as it left: the link carried the
	// media and the padding together, the target as far as the padding
	// reached it (the writer may have sent less than asked).
	achieved := in.Sending + r.SendRate
	if achieved > c.cur.Target {
		achieved = c.cur.Target
	}
	if achieved > c.Estimate(in) {
		if c.floor == 0 {
			c.best = in.Estimate
		}
		c.floor = achieved
	}
	c.finish(now, true)
	return OutcomeSuccess
}

func (c *Controller) finish(now time.Time, ok bool) {
	c.cur = Cluster{}
	c.aborted = false
	if ok {
		c.interval = c.cfg.Interval
		c.next = now.Add(c.interval)
		return
	}
	c.backOff(now)
}

// backOff doubles the wait before the next cluster.
func (c *Controller) backOff(now time.Time) {
	c.interval = min(2*c.interval, c.cfg.MaxInterval)
	c.next = now.Add(c.interval)
}

// Current is the cluster in flight (ID 0: none).
func (c *Controller) Current() Cluster { return c.cur }
