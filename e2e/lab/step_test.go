package lab

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/netlab"
)

// Scenario 2 of issue #10: the cap steps every stepEvery.
const (
	stepEvery    = 20 * time.Second
	stepFollow   = 5 * time.Second
	maxOneFreeze = 0.5 // seconds
)

// steps are Carol's downlink caps and the tallest camera height she may
// receive under each (two cameras of q/h/f at about 150k/500k/2M
// bit/s): the top layer fits one camera under 3 Mbit/s, the middle one
// under 1 Mbit/s, only the low ones under 500 kbit/s.
var steps = []struct { //nolint:gochecknoglobals // the scenario's table
	capBps    int
	maxHeight int
	minHeight int
}{
	{3_000_000, 720, 360},
	{1_000_000, 360, 180},
	{500_000, 180, 180},
	{3_000_000, 720, 360},
}

// TestDownlinkSteps: Carol's downlink cap steps 3 Mbit/s -> 1 Mbit/s ->
// 500 kbit/s -> 3 Mbit/s every 20 s; within 5 s of each step the
// tallest camera she decodes is what the cap carries, and no freeze is
// longer than 500 ms.
func TestDownlinkSteps(t *testing.T) {
	ctx := testContext(t, 8*time.Minute)
	c := newCall(t, ctx, "lab-steps")
	_, _, carol := c.join("Ada"), c.join("Bob"), c.join("Carol")
	rec := c.record("scenario 2: downlink cap steps on carol")
	defer func() {
		rec.stop()
		writeTimeline(t, rec.timeline(), "downlink-steps")
		c.keepServerLog("downlink-steps")
	}()
	latest := func() netlab.Sample { return rec.latest(carol.name) }
	if !poll(ctx, warmUpLimit, func() bool { return len(cameras(latest())) == 2 && tallest(latest()) > 0 }) {
		t.Fatalf("Carol does not decode both cameras within %v: %+v", warmUpLimit, cameras(latest()))
	}
	for _, st := range steps {
		at := rec.now()
		c.setDownCap(carol, st.capBps, rec)
		ok := func() bool { h := tallest(latest()); return h >= st.minHeight && h <= st.maxHeight }
		var after float64
		if poll(ctx, stepFollow+time.Second, ok) { // +1 s: the sampling period
			after = rec.now() - at
		}
		if after == 0 {
			t.Errorf("cap %d kbit/s: tallest camera not within %d..%dp after %v: %+v",
				st.capBps/1000, st.minHeight, st.maxHeight, stepFollow, cameras(latest()))
		} else {
			t.Logf("cap %d kbit/s: tallest camera %dp after %.1f s", st.capBps/1000, tallest(latest()), after)
		}
		time.Sleep(time.Until(rec.start.Add(time.Duration((at + stepEvery.Seconds()) * float64(time.Second)))))
	}
	worst, _ := longestFreeze(rec.samples(carol.name, 0, 1e9))
	t.Logf("longest freeze (average of the freezes counted within one sample): %.2f s", worst)
	if worst > maxOneFreeze {
		t.Errorf("a freeze of about %.2f s, want none longer than %.1f s", worst, maxOneFreeze)
	}
}
