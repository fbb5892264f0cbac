package probe

import (
	"testing"
	"testing/synctest"
	"time"
)

// doubling is the Controller's default configuration but for its
// growth: clusters at twice the estimate, the figures most tests below
// were worked out with. TestControllerClimbs climbs at the default.
var doubling = Config{Growth: 2} //nolint:gochecknoglobals // read-only test configuration

// result is the Result of a cluster whose padding (rate bit/s)
// arrived at recv times that rate, with lost of its 50 packets lost.
func result(rate int, recv float64, lost int) Result {
	return Result{Sent: 50, Received: 50 - lost, Lost: lost, Bytes: 50 * 250,
		SendRate: rate, RecvRate: int(recv * float64(rate))}
}

// calmAndCongested returns in, and in with the estimator signalling
// congestion.
func calmAndCongested(in Input) (calm, bad Input) {
	bad = in
	bad.Congested = true
	return in, bad
}

// nextCluster is the next cluster c starts with in, polled every 100 ms
// for at most 20 s.
func nextCluster(t *testing.T, c *Controller, in Input) *Cluster {
	t.Helper()
	for range 200 {
		if cl := c.Update(time.Now(), in); cl != nil {
			return cl
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no cluster within 20 s with %+v", in)
	return nil
}

// TestControllerClimbs: with a link that carries everything, a cluster
// at Growth (1.5) times the estimator's estimate, then clusters at 1.5
// times the floor raise it step by step until floorUsable of it is
// within minStep of what the tiles want, each one started as soon as
// the last was judged.
func TestControllerClimbs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(Config{})
		in := Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000}
		var targets []int
		t0 := time.Now()
		var last time.Duration
		for range 60 {
			now := time.Now()
			if cl := c.Update(now, in); cl != nil {
				if cl.PadRate != cl.Target-in.Sending || cl.Duration != DefaultDuration {
					t.Fatalf("cluster %+v with %d sent", cl, in.Sending)
				}
				targets = append(targets, cl.Target)
				last = time.Since(t0)
			}
			if c.Probing() && !c.Sending(now) {
				cl := c.Current()
				if o := c.Judge(now, in, result(cl.PadRate, 1, 0)); o != OutcomeSuccess {
					t.Fatalf("outcome %v", o)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		want := []int{450_000, 675_000, 1_012_500, 1_518_750, 2_278_125, 3_417_187}
		if len(targets) != len(want) {
			t.Fatalf("cluster targets %v, want %v", targets, want)
		}
		for i := range want {
			if targets[i] != want[i] {
				t.Fatalf("cluster targets %v, want %v", targets, want)
			}
		}
		// Each cluster: 400 ms sent, judged at the next 100 ms step.
		if last != 2500*time.Millisecond {
			t.Errorf("last cluster started after %v, want 2.5s", last)
		}
		// Within minStep of what is wanted: no further cluster.
		if got := c.Estimate(in); got != 2_904_608 {
			t.Errorf("estimate %d, want %v of the floor", got, floorUsable)
		}
	})
}

// TestControllerNoProbeWhenCovered: no cluster while the estimate
// covers what is wanted (with the margin), or nothing is wanted.
func TestControllerNoProbeWhenCovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		for _, in := range []Input{
			{Estimate: 2_000_000, Wanted: 2_080_000, Sending: 1_800_000},
			{Estimate: 300_000, Wanted: 0},
			{Estimate: 300_000, Wanted: 3_000_000, Congested: true},
			// The media already fills what a cluster would aim at.
			{Estimate: 300_000, Wanted: 3_000_000, Sending: 590_000},
		} {
			for range 30 {
				if cl := c.Update(time.Now(), in); cl != nil {
					t.Fatalf("%+v: cluster %+v", in, cl)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
}

// TestControllerNoProbeAboveMax: what is wanted above the estimator's
// ceiling is not probed for: at the ceiling no cluster starts (one
// would without a ceiling), and below it the clusters stop once the
// floor covers the ceiling.
func TestControllerNoProbeAboveMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ceiling = 20_000_000
		atMax := Input{Estimate: ceiling, Wanted: 30_000_000, Sending: 19_000_000}
		if cl := nextCluster(t, NewController(doubling), atMax); cl == nil {
			t.Fatal("no cluster without a ceiling")
		}
		capped := doubling
		capped.Max = ceiling
		c := NewController(capped)
		for range 30 {
			if cl := c.Update(time.Now(), atMax); cl != nil {
				t.Fatalf("cluster %+v at the ceiling", cl)
			}
			time.Sleep(100 * time.Millisecond)
		}

		c = NewController(capped)
		in := Input{Estimate: 5_000_000, Wanted: 30_000_000, Sending: 4_000_000}
		clusters := 0
		for range 100 {
			now := time.Now()
			if cl := c.Update(now, in); cl != nil {
				clusters++
			}
			if c.Probing() && !c.Sending(now) {
				c.Judge(now, in, result(c.Current().PadRate, 1, 0))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if clusters == 0 || clusters > 3 {
			t.Errorf("%d clusters from 5 Mbit/s to a 20 Mbit/s ceiling, want 1-3", clusters)
		}
		if got := c.Estimate(in); got < ceiling*95/100 {
			t.Errorf("estimate %d after the climb, want about the ceiling", got)
		}
	})
}

// TestControllerBacksOff: clusters that arrive slower than sent or
// lose packets leave the estimate alone. After each failure a smaller
// step (below the lowest failure by the margin) may follow after
// Interval, until the steps are too small to be worth it; the failed
// target is retried 1, 2, 4... seconds after each failure, up to
// MaxInterval (3 s by default).
func TestControllerBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000}
		var starts []time.Duration
		t0 := time.Now()
		results := []Result{result(350_000, 0.6, 0), result(350_000, 1, 10)}
		for i := 0; time.Since(t0) < 40*time.Second; i++ {
			now := time.Now()
			if cl := c.Update(now, in); cl != nil {
				starts = append(starts, now.Sub(t0))
			}
			if c.Probing() && !c.Sending(now) {
				if o := c.Judge(now, in, results[len(starts)%2]); o != OutcomeLimited {
					t.Fatalf("outcome %v", o)
				}
				if c.Floor() != 0 {
					t.Fatalf("floor %d after a failed cluster", c.Floor())
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Each cluster is judged 400 ms after its start, then waits:
		// 600k (fails: 1 s), 600k again (the 1 s back-off is over;
		// fails: 2 s), 500k and 416k after 1 s each (smaller steps, all
		// fail: MaxInterval, 3 s; the next smaller one, 347k, would
		// carry less than MinPadding over the 250k of media), then 600k
		// every 3 s.
		gaps := []int{0, 1400, 1400, 1400, 3400, 3400, 3400}
		var at time.Duration
		for i, g := range gaps {
			at += time.Duration(g) * time.Millisecond
			if i >= len(starts) || starts[i] != at {
				t.Fatalf("cluster starts %v, want gaps of %v ms", starts, gaps)
			}
		}
	})
}

// TestControllerAbortsOnCongestion: congestion while a cluster is sent
// ends it at once, aborted; judged once its feedback is in, it raises
// no floor, even when the part sent arrived as sent (a shaper's bucket
// carries a short part whole). Either way the next cluster waits
// Interval.
func TestControllerAbortsOnCongestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, bad := range []Input{
			{Estimate: 300_000, Wanted: 3_000_000, Congested: true},
			{Estimate: 250_000, Wanted: 3_000_000}, // the estimate fell
		} {
			c := NewController(doubling)
			if c.Update(time.Now(), Input{Estimate: 300_000, Wanted: 3_000_000}) == nil {
				t.Fatal("no cluster")
			}
			time.Sleep(50 * time.Millisecond)
			c.Update(time.Now(), bad)
			if c.Sending(time.Now()) {
				t.Errorf("%+v: still sending", bad)
			}
			if o := c.Judge(time.Now(), bad, Result{Sent: 20, Received: 2}); o != OutcomeNone {
				t.Errorf("%+v: judged %v before the feedback", bad, o)
			}
			if o := c.Judge(time.Now(), bad, result(300_000, 0.5, 0)); o != OutcomeAborted {
				t.Errorf("%+v: outcome %v, want aborted", bad, o)
			}
			if c.Floor() != 0 || c.Probing() {
				t.Errorf("%+v: floor %d, probing %v", bad, c.Floor(), c.Probing())
			}
		}
		for _, c := range []struct {
			part Result
			wait time.Duration
		}{
			{result(500_000, 1, 0), DefaultInterval},
			{result(500_000, 0.5, 0), DefaultInterval},
		} {
			ctl := NewController(doubling)
			in := Input{Estimate: 300_000, Wanted: 3_000_000}
			if ctl.Update(time.Now(), in) == nil {
				t.Fatal("no cluster")
			}
			ctl.Update(time.Now(), Input{Estimate: 200_000, Wanted: 3_000_000})
			ctl.Judge(time.Now(), in, c.part)
			start := time.Now()
			nextCluster(t, ctl, in)
			if got := time.Since(start); got != c.wait {
				t.Errorf("after an aborted cluster with %+v: next after %v, want %v", c.part, got, c.wait)
			}
			if ctl.Floor() != 0 {
				t.Errorf("after an aborted cluster with %+v: floor %d, want none", c.part, ctl.Floor())
			}
		}
	})
}

// TestControllerFloorLifetime: the floor is used while the estimator
// is below it and calm (even falling: see Controller); it goes when the
// estimator reaches it or when congestion shows.
func TestControllerFloorLifetime(t *testing.T) {
	for _, c := range []struct {
		name string
		next Input
		keep bool
	}{
		{"calm", Input{Estimate: 400_000, Wanted: 600_000}, true},
		{"caught up", Input{Estimate: 650_000, Wanted: 600_000}, false},
		{"congested", Input{Estimate: 400_000, Wanted: 600_000, Congested: true}, false},
		{"falling", Input{Estimate: 300_000, Wanted: 600_000}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctl := NewController(doubling)
				in := Input{Estimate: 350_000, Wanted: 510_000, Sending: 300_000}
				cl := ctl.Update(time.Now(), in)
				if cl == nil || cl.Target != 600_000 {
					t.Fatalf("cluster %+v, want one at 600k (a floor that high covers the 510k wanted)", cl)
				}
				time.Sleep(DefaultDuration + 100*time.Millisecond)
				if o := ctl.Judge(time.Now(), in, result(cl.PadRate, 1, 0)); o != OutcomeSuccess {
					t.Fatalf("outcome %v", o)
				}
				if ctl.Floor() != 600_000 {
					t.Fatalf("floor %d, want the 600k the cluster delivered", ctl.Floor())
				}
				if got := ctl.Estimate(in); got != 510_000 {
					t.Fatalf("estimate %d, want %v of the 600k floor", got, floorUsable)
				}
				ctl.Update(time.Now(), c.next)
				if keep := ctl.Floor() != 0; keep != c.keep {
					t.Errorf("floor %d after %+v, want kept %v", ctl.Floor(), c.next, c.keep)
				}
			})
		})
	}
}

// TestControllerWaitsForFeedback: a cluster is judged once 95% of its
// packets are reported, or with what there is after Settle.
func TestControllerWaitsForFeedback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 300_000, Wanted: 3_000_000}
		if c.Update(time.Now(), in) == nil {
			t.Fatal("no cluster")
		}
		partial := Result{Sent: 50, Received: 3, SendRate: 300_000, RecvRate: 300_000}
		time.Sleep(DefaultDuration)
		if o := c.Judge(time.Now(), in, partial); o != OutcomeNone {
			t.Fatalf("judged %v with 3 of 50 reported", o)
		}
		time.Sleep(DefaultSettle)
		if o := c.Judge(time.Now(), in, partial); o != OutcomeNoData {
			t.Fatalf("outcome %v after settling, want no_data", o)
		}
	})
}

// TestControllerPartialLink: a link that carries 1.5 times the estimate
// but not twice it: the step to twice fails and backs off, the smaller
// steps below the failure succeed and raise the floor, and they do not
// reset the back-off of the step that failed.
func TestControllerPartialLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const capacity = 450_000
		c := NewController(doubling)
		in := Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000}
		var over []time.Duration
		t0 := time.Now()
		for time.Since(t0) < 40*time.Second {
			now := time.Now()
			if cl := c.Update(now, in); cl != nil && cl.Target > capacity {
				over = append(over, now.Sub(t0))
			}
			if c.Probing() && !c.Sending(now) {
				cl := c.Current()
				recv := 1.0
				if cl.Target > capacity {
					recv = 0.7
				}
				o := c.Judge(now, in, result(cl.PadRate, recv, 0))
				t.Logf("%v target %d: %v, floor %d", now.Sub(t0), cl.Target, o, c.Floor())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if c.Floor() < 300_000 || c.Floor() > capacity {
			t.Errorf("floor %d, want between the estimate and the capacity", c.Floor())
		}
		// 1, 2, 3, 3... seconds apart (MaxInterval): about 13 in 40 s.
		if len(over) > 14 {
			t.Errorf("%d clusters above the capacity in 40 s (at %v), want the back-off to space them", len(over), over)
		}
		for i := 2; i < len(over); i++ {
			if over[i]-over[i-1] < over[i-1]-over[i-2] && over[i]-over[i-1] < DefaultMaxInterval {
				t.Errorf("clusters above the capacity at %v: the gaps shrink", over)
				break
			}
		}
	})
}

// TestControllerBackOffEndsWhenEstimatorRecovers: after failures have
// made the wait long, the estimator rising by itself well above its
// value at the last failure (a cap lifted) lets a cluster start at once.
func TestControllerBackOffEndsWhenEstimatorRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 300_000, Wanted: 3_000_000}
		for range 5 { // 600k twice, then smaller steps down to 347k: waits of 1, 2, 3, 3, 3 s
			nextCluster(t, c, in)
			time.Sleep(DefaultDuration)
			if o := c.Judge(time.Now(), in, result(300_000, 0.5, 0)); o != OutcomeLimited {
				t.Fatalf("outcome %v", o)
			}
		}
		time.Sleep(time.Second)
		if cl := c.Update(time.Now(), in); cl != nil {
			t.Fatalf("cluster %+v 1 s into a 3 s back-off", cl)
		}
		in.Estimate = 360_000 // +20%: not yet
		if cl := c.Update(time.Now(), in); cl != nil {
			t.Fatalf("cluster %+v with the estimator up 20%%", cl)
		}
		in.Estimate = 400_000
		if cl := c.Update(time.Now(), in); cl == nil || cl.Target != 800_000 {
			t.Fatalf("cluster %+v with the estimator up a third, want one at twice it", cl)
		}
	})
}

// TestControllerBackOffHoldsWhileEstimatorSwings: under a cap, GCC's
// estimate swings by half from one second to the next; a swing up that
// stays well below the target that failed is no recovery: the back-off
// goes on, and a cluster started meanwhile aims below the failure, not
// at twice the estimate.
func TestControllerBackOffHoldsWhileEstimatorSwings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 150_000, Wanted: 3_000_000, Sending: 100_000}
		for range 2 { // 300k twice (the first wait is over): both fail with loss, the wait is 2 s
			nextCluster(t, c, in)
			time.Sleep(DefaultDuration)
			if o := c.Judge(time.Now(), in, result(160_000, 0.6, 8)); o != OutcomeLimited {
				t.Fatalf("outcome %v", o)
			}
		}
		time.Sleep(time.Second)
		in.Estimate = 190_000 // more than a quarter up, still below 300k/1.2
		cl := c.Update(time.Now(), in)
		if cl == nil || cl.Target > 300_000*10/12 {
			t.Fatalf("cluster %+v 1 s into a 2 s back-off, on a swing of the estimator: want one below the failed 300k by the margin, not twice the estimate", cl)
		}
	})
}

// TestControllerCarefulAfterNewGround: a success above a target that
// failed may be a shaper's burst allowance letting a short cluster
// through; the step after it grows by carefulGrowth, and carefulFor
// later by Growth again (two successes raised the floor).
func TestControllerCarefulAfterNewGround(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 200_000, Wanted: 5_000_000, Sending: 150_000}
		cl := c.Update(time.Now(), in) // 400k: fails
		time.Sleep(DefaultDuration)
		if o := c.Judge(time.Now(), in, result(cl.PadRate, 0.6, 5)); o != OutcomeLimited {
			t.Fatalf("outcome %v", o)
		}
		time.Sleep(DefaultInterval)
		cl = c.Update(time.Now(), in) // the back-off is over: 400k again, passes
		if cl == nil || cl.Target != 400_000 {
			t.Fatalf("cluster %+v after the back-off, want 400k", cl)
		}
		time.Sleep(DefaultDuration)
		if o := c.Judge(time.Now(), in, result(cl.PadRate, 1, 0)); o != OutcomeSuccess {
			t.Fatalf("outcome %v", o)
		}
		cl = c.Update(time.Now(), in)
		if cl == nil || cl.Target != 600_000 {
			t.Fatalf("cluster %+v right after new ground at 400k, want %v times it", cl, carefulGrowth)
		}
		time.Sleep(DefaultDuration)
		if o := c.Judge(time.Now(), in, result(cl.PadRate, 1, 0)); o != OutcomeSuccess {
			t.Fatalf("outcome %v", o)
		}
		time.Sleep(carefulFor)
		if cl = c.Update(time.Now(), in); cl == nil || cl.Target != 1_200_000 {
			t.Fatalf("cluster %+v %v after new ground, want twice the 600k floor", cl, carefulFor)
		}
	})
}

// TestControllerSwingAfterALowFailureIsNoRecovery: failures at the top
// and at the bottom of GCC's swing under a cap; the estimator's next
// swing up, above the bottom one by a quarter but not above the top one,
// is no recovery: no cluster at twice it during the back-off.
func TestControllerSwingAfterALowFailureIsNoRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 250_000, Wanted: 3_000_000, Sending: 100_000}
		for _, est := range []int{250_000, 160_000} { // 500k, then 320k: both fail
			in.Estimate = est
			cl := nextCluster(t, c, in)
			time.Sleep(DefaultDuration)
			if o := c.Judge(time.Now(), in, result(cl.PadRate*6/10, 0.6, 2)); o != OutcomeLimited {
				t.Fatalf("cluster %+v: outcome %v", cl, o)
			}
		}
		in.Estimate = 270_000 // a quarter above the last failure's 160k, below the first's 250k by a quarter
		if cl := c.Update(time.Now(), in); cl != nil {
			t.Fatalf("cluster %+v at once on a swing of the estimator, want the back-off to go on", cl)
		}
		in.Estimate = 400_000 // above both by a quarter and more: the cap was lifted
		if cl := c.Update(time.Now(), in); cl == nil || cl.Target != 800_000 {
			t.Fatalf("cluster %+v with the estimator well above every failure, want one at twice it", cl)
		}
	})
}

// TestControllerQuietAfterCongestion: no cluster starts until the
// estimator has shown no congestion for quietAfterCongestion; each new
// sign of congestion starts the wait again.
func TestControllerQuietAfterCongestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		calm, bad := calmAndCongested(Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000})
		c.Update(time.Now(), bad)
		time.Sleep(2 * time.Second)
		c.Update(time.Now(), bad) // congestion again, 2 s later
		start := time.Now()
		for c.Update(time.Now(), calm) == nil {
			if time.Since(start) > 10*time.Second {
				t.Fatal("no cluster 10 s after the congestion")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := time.Since(start); got != quietAfterCongestion {
			t.Fatalf("first cluster %v after the last congestion, want %v", got, quietAfterCongestion)
		}
	})
}

// TestControllerFullLink: while the media fills the estimate, a cluster
// aims fullLinkGrowth above it, not Growth: its padding goes straight
// into the queue of a link that may be full; a cluster that would carry
// less than MinPadding is not sent. With media well below the estimate the cluster fills the
// gap first and aims at Growth times it.
func TestControllerFullLink(t *testing.T) {
	for _, c := range []struct {
		sending, target int
	}{
		{288_000, 0},       // the sent floor holds the estimate at the media: 72k of padding is too little to judge
		{259_200, 360_000}, // 90% of the estimate: 101k of padding
		{250_000, 576_000},
		{100_000, 576_000},
		{400_000, 0}, // the media above the estimate: no cluster
	} {
		ctl := NewController(doubling)
		cl := ctl.Update(time.Now(), Input{Estimate: 288_000, Wanted: 3_000_000, Sending: c.sending})
		if c.target == 0 && cl == nil {
			continue
		}
		if cl == nil || cl.Target != c.target || cl.PadRate < DefaultMinPadding {
			t.Errorf("estimate 288k, %d sent: cluster %+v, want one at %d", c.sending, cl, c.target)
		}
	}
}

// TestControllerOwnCongestionIsNoQuiet: congestion while a cluster is in
// flight and just after it failed is the cluster's own: the next one
// waits for the back-off (Interval, below the failed target), not for
// quietAfterCongestion. Congestion later than ownCongestion after the
// failure starts the quiet as before.
func TestControllerOwnCongestionIsNoQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		calm, bad := calmAndCongested(Input{Estimate: 400_000, Wanted: 3_000_000, Sending: 300_000})
		cl := c.Update(time.Now(), calm)
		if cl == nil {
			t.Fatal("no first cluster")
		}
		time.Sleep(100 * time.Millisecond)
		c.Update(time.Now(), bad) // the cluster filled the queue: aborted
		time.Sleep(DefaultSettle)
		if o := c.Judge(time.Now(), bad, result(cl.PadRate, 0.5, 0)); o != OutcomeAborted {
			t.Fatalf("outcome %v, want aborted", o)
		}
		time.Sleep(500 * time.Millisecond)
		c.Update(time.Now(), bad) // its congestion, still showing
		start := time.Now()
		var next *Cluster
		for next == nil && time.Since(start) < 10*time.Second {
			time.Sleep(100 * time.Millisecond)
			next = c.Update(time.Now(), calm)
		}
		if next == nil || time.Since(start) >= quietAfterCongestion {
			t.Fatalf("next cluster %+v %v after the failed one's congestion, want one within the back-off", next, time.Since(start))
		}

		// Congestion with no cluster about: the quiet holds.
		time.Sleep(DefaultSettle)
		c.Judge(time.Now(), bad, result(next.PadRate, 0.5, 0))
		time.Sleep(2 * ownCongestion)
		c.Update(time.Now(), bad)
		start = time.Now()
		for c.Update(time.Now(), calm) == nil && time.Since(start) < 10*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		if got := time.Since(start); got < quietAfterCongestion {
			t.Errorf("a cluster %v after congestion no cluster caused, want %v", got, quietAfterCongestion)
		}
	})
}

// TestControllerLeastPadding: at a low estimate a step of Growth would
// carry less than MinPadding; the cluster carries MinPadding instead
// (a subscriber under a cap below the lowest layer finds the lifted cap).
func TestControllerLeastPadding(t *testing.T) {
	c := NewController(Config{})
	cl := c.Update(time.Now(), Input{Estimate: 100_000, Wanted: 3_000_000, Sending: 80_000})
	if cl == nil || cl.Target != 180_000 || cl.PadRate != DefaultMinPadding {
		t.Fatalf("cluster %+v, want one of %d padding over the 80k of media", cl, DefaultMinPadding)
	}
}

// TestControllerDeliveredAbortKeepsThePace: after failures have doubled
// the wait, a cluster aborted whose part arrived as sent is followed
// after Interval, not after a wait doubled again: nothing failed (a
// cap lifted is found at once).
func TestControllerDeliveredAbortKeepsThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(doubling)
		in := Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000}
		for range 2 { // two failures: the next wait is 2 s, then 4
			cl := nextCluster(t, c, in)
			time.Sleep(cl.Duration)
			if o := c.Judge(time.Now(), in, result(cl.PadRate, 0.6, 0)); o != OutcomeLimited {
				t.Fatalf("outcome %v", o)
			}
		}
		nextCluster(t, c, in)
		time.Sleep(100 * time.Millisecond)
		c.Update(time.Now(), Input{Estimate: 200_000, Wanted: 3_000_000, Sending: 250_000}) // the estimate fell: aborted
		if o := c.Judge(time.Now(), in, result(300_000, 1, 0)); o != OutcomeAborted {
			t.Fatalf("outcome %v, want aborted", o)
		}
		start := time.Now()
		nextCluster(t, c, in)
		if got := time.Since(start); got != DefaultInterval {
			t.Errorf("next cluster %v after an aborted one that was delivered, want %v", got, DefaultInterval)
		}
	})
}
