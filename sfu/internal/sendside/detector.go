package sendside

import "math"

// usage is what the delay trend says of the path.
type usage uint8

const (
	normal usage = iota
	overuse
	underuse
)

func (u usage) String() string {
	switch u {
	case overuse:
		return "overuse"
	case underuse:
		return "underuse"
	}
	return "normal"
}

// The overuse detector (GCC draft, section 5.4): the trend against a
// threshold that adapts to it, so that a path whose delay varies a lot
// (Wi-Fi) does not read as congested all the time, and one competing
// with loss-based TCP flows is not starved.
const (
	thresholdInitial = 12.5
	thresholdMin     = 6.0
	thresholdMax     = 600.0
	// thresholdUp / thresholdDown: how fast the threshold follows a
	// trend above it / below it, per ms.
	thresholdUp   = 0.0087
	thresholdDown = 0.039
	// thresholdJump: a trend this far above the threshold is a real
	// overuse, not a reason to raise the threshold.
	thresholdJump = 15.0
	// overuseFor: the trend must stay above the threshold this long
	// (ms of send time) and over two groups to count.
	overuseFor = 10.0
)

type detector struct {
	threshold   float64
	lastUpdate  float64 // ms; < 0 before the first
	overuseTime float64 // ms; < 0 when not over
	overCount   int
	prevTrend   float64
	state       usage
}

func newDetector() detector {
	return detector{threshold: thresholdInitial, lastUpdate: -1, overuseTime: -1}
}

// detect takes a trend, the send-time gap (ms) of the groups it came
// from and the arrival clock (ms), and returns the usage.
func (d *detector) detect(trend, sendGap, now float64) usage {
	switch {
	case trend > d.threshold:
		if d.overuseTime < 0 {
			d.overuseTime = sendGap / 2
		} else {
			d.overuseTime += sendGap
		}
		d.overCount++
		if d.overuseTime > overuseFor && d.overCount > 1 && trend >= d.prevTrend {
			d.overuseTime, d.overCount = 0, 0
			d.state = overuse
		}
	case trend < -d.threshold:
		d.overuseTime, d.overCount = -1, 0
		d.state = underuse
	default:
		d.overuseTime, d.overCount = -1, 0
		d.state = normal
	}
	d.prevTrend = trend
	d.adapt(trend, now)
	return d.state
}

func (d *detector) adapt(trend, now float64) {
	if d.lastUpdate < 0 {
		d.lastUpdate = now
	}
	a := math.Abs(trend)
	if a > d.threshold+thresholdJump {
		d.lastUpdate = now
		return
	}
	k := thresholdUp
	if a < d.threshold {
		k = thresholdDown
	}
	dt := min(now-d.lastUpdate, 100)
	d.threshold = min(max(d.threshold+k*(a-d.threshold)*dt, thresholdMin), thresholdMax)
	d.lastUpdate = now
}
