package probe

import (
	"testing"
	"testing/synctest"
	"time"
)

// delivered is the Result of a cluster whose padding (rate bit/s)
// arrived at recv times that rate, with lost of its 50 packets lost.
func delivered(rate int, recv float64, lost int) Result {
	return Result{Sent: 50, Received: 50 - lost, Lost: lost, Bytes: 50 * 250,
		SendRate: rate, RecvRate: int(recv * float64(rate))}
}

// TestControllerClimbs: with a link that carries everything, clusters
// at twice the estimate raise the floor step by step up to what the
// tiles want, a second apart, and stop once the estimate covers it.
func TestControllerClimbs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(Config{})
		in := Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000}
		var targets []int
		for range 40 {
			now := time.Now()
			if cl := c.Update(now, in); cl != nil {
				if cl.PadRate != cl.Target-in.Sending || cl.Duration != DefaultDuration {
					t.Fatalf("cluster %+v with %d sent", cl, in.Sending)
				}
				targets = append(targets, cl.Target)
			}
			if c.Probing() && !c.Sending(now) {
				cl := c.Current()
				if o := c.Judge(now, in, delivered(cl.PadRate, 1, 0)); o != OutcomeSuccess {
					t.Fatalf("outcome %v", o)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		want := []int{600_000, 1_200_000, 2_400_000, 3_000_000}
		if len(targets) != len(want) {
			t.Fatalf("cluster targets %v, want %v", targets, want)
		}
		for i := range want {
			if targets[i] != want[i] {
				t.Fatalf("cluster targets %v, want %v", targets, want)
			}
		}
		if got := c.Estimate(in); got != 3_000_000 {
			t.Errorf("estimate %d, want the floor at 3 Mbit/s", got)
		}
	})
}

// TestControllerNoProbeWhenCovered: no cluster while the estimate
// covers what is wanted (with the margin), or nothing is wanted.
func TestControllerNoProbeWhenCovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(Config{})
		for _, in := range []Input{
			{Estimate: 2_000_000, Wanted: 2_200_000, Sending: 1_800_000},
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

// TestControllerBacksOff: clusters that arrive slower than sent or
// lose packets leave the estimate alone and space the next ones 2, 4,
// 8... seconds apart (a success leaves 1 s), up to MaxInterval.
func TestControllerBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewController(Config{MaxInterval: 8 * time.Second})
		in := Input{Estimate: 300_000, Wanted: 3_000_000, Sending: 250_000}
		var starts []time.Duration
		t0 := time.Now()
		results := []Result{delivered(350_000, 0.6, 0), delivered(350_000, 1, 10)}
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
		// Each cluster is judged 200 ms after its start, then waits.
		gaps := []int{0, 2200, 4200, 8200, 8200, 8200}
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
// ends it at once, aborted, without a floor.
func TestControllerAbortsOnCongestion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, bad := range []Input{
			{Estimate: 300_000, Wanted: 3_000_000, Congested: true},
			{Estimate: 250_000, Wanted: 3_000_000}, // the estimate fell
		} {
			c := NewController(Config{})
			if c.Update(time.Now(), Input{Estimate: 300_000, Wanted: 3_000_000}) == nil {
				t.Fatal("no cluster")
			}
			time.Sleep(50 * time.Millisecond)
			c.Update(time.Now(), bad)
			if c.Sending(time.Now()) {
				t.Errorf("%+v: still sending", bad)
			}
			if o := c.Judge(time.Now(), bad, delivered(300_000, 1, 0)); o != OutcomeAborted {
				t.Errorf("%+v: outcome %v, want aborted", bad, o)
			}
			if c.Floor() != 0 || c.Probing() {
				t.Errorf("%+v: floor %d, probing %v", bad, c.Floor(), c.Probing())
			}
		}
	})
}

// TestControllerFloorLifetime: the floor is used while the estimator
// is below it and calm; it goes when the estimator reaches it, when
// congestion shows, or when the estimator falls.
func TestControllerFloorLifetime(t *testing.T) {
	for _, c := range []struct {
		name string
		next Input
		keep bool
	}{
		{"calm", Input{Estimate: 400_000, Wanted: 600_000}, true},
		{"caught up", Input{Estimate: 650_000, Wanted: 600_000}, false},
		{"congested", Input{Estimate: 400_000, Wanted: 600_000, Congested: true}, false},
		{"falling", Input{Estimate: 300_000, Wanted: 600_000}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctl := NewController(Config{})
				in := Input{Estimate: 350_000, Wanted: 600_000, Sending: 300_000}
				cl := ctl.Update(time.Now(), in)
				if cl == nil || cl.Target != 600_000 {
					t.Fatalf("cluster %+v", cl)
				}
				time.Sleep(300 * time.Millisecond)
				if o := ctl.Judge(time.Now(), in, delivered(cl.PadRate, 1, 0)); o != OutcomeSuccess {
					t.Fatalf("outcome %v", o)
				}
				if got := ctl.Estimate(in); got != 600_000 {
					t.Fatalf("estimate %d, want the 600k floor", got)
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
		c := NewController(Config{})
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
