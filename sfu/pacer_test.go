package sfu

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// timingWriter records when each packet was written and its size.
type timingWriter struct {
	mu    sync.Mutex
	at    []time.Time
	bytes []int
}

func (w *timingWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = append(w.at, time.Now())
	w.bytes = append(w.bytes, rtpHeaderLen+len(payload))
	return len(payload), nil
}

func (w *timingWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *timingWriter) written() ([]time.Time, []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.at...), append([]int(nil), w.bytes...)
}

// burstThroughWriter feeds n one-packet frames (a key frame first) to the harness's
// track at one instant and returns when the writer has written them all.
func burstThroughWriter(t *testing.T, pace int64, n int) ([]time.Time, []int) {
	t.Helper()
	h := newHarness(t, DefaultConfig())
	w := &timingWriter{}
	d := h.subscribe(t, w, 7, true)
	d.q.pace.Store(pace)
	for i := range n {
		h.feed(uint16(1+i), i == 0)
	}
	time.Sleep(5 * time.Second) // far longer than any pace below needs
	at, bytes := w.written()
	if len(at) != n {
		t.Fatalf("%d of %d packets written", len(at), n)
	}
	return at, bytes
}

// TestPacedWriterSpacesABurst: a key frame's worth of packets queued at
// once leaves a paced writer no faster than the pace (with paceBurst of
// slack), and an unpaced writer at once.
func TestPacedWriterSpacesABurst(t *testing.T) {
	// 20 packets at 1 Mbit/s: 180 ms, within paceMaxDelay, so the pace
	// alone sets the spacing.
	const pace = 1_000_000 // bit/s
	synctest.Test(t, func(t *testing.T) {
		at, bytes := burstThroughWriter(t, pace, 20)
		sent := 0
		for i := range at {
			// By the time packet i leaves, what left before it fits the
			// pace plus the burst allowance.
			el := at[i].Sub(at[0])
			allowed := float64(pace)/8*(el+paceBurst).Seconds() + float64(bytes[0])
			if float64(sent) > allowed {
				t.Fatalf("packet %d left %v after the first with %d bytes before it, want at most %.0f at %d bit/s", i, el, sent, allowed, pace)
			}
			sent += bytes[i]
		}
		span := at[len(at)-1].Sub(at[0])
		want := time.Duration(float64(sent-bytes[len(bytes)-1])*8/pace*float64(time.Second)) - paceBurst
		if span < want-time.Millisecond {
			t.Errorf("20 packets (%d bytes) took %v, want at least %v at %d bit/s", sent, span, want, pace)
		}
		t.Logf("20 packets, %d bytes: %v", sent, span)
	})
	synctest.Test(t, func(t *testing.T) {
		at, _ := burstThroughWriter(t, 0, 20)
		if span := at[len(at)-1].Sub(at[0]); span != 0 {
			t.Errorf("unpaced: 20 packets took %v, want no wait", span)
		}
	})
}

// TestPacedWriterClearsABacklog: with more queued than the pace would
// send in paceMaxDelay, the writer speeds up: the queue clears in about
// paceMaxDelay, not in the seconds the pace alone would take.
func TestPacedWriterClearsABacklog(t *testing.T) {
	const pace = 100_000 // 150 packets of ~1.1 KB: 13 s at this pace
	synctest.Test(t, func(t *testing.T) {
		at, _ := burstThroughWriter(t, pace, 150)
		if span := at[len(at)-1].Sub(at[0]); span > paceMaxDelay+100*time.Millisecond {
			t.Errorf("150 queued packets took %v to leave, want about %v", span, paceMaxDelay)
		}
	})
}

func TestPaceRate(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name        string
		target      int
		congestedAt time.Time
		want        int64
	}{
		{"never congested", 500_000, time.Time{}, 0},
		{"congested now", 500_000, now, 1_250_000},
		{"congested a moment ago", 500_000, now.Add(-paceLinger + time.Millisecond), 1_250_000},
		{"congestion long over", 500_000, now.Add(-paceLinger), 0},
		{"no estimate", 0, now, 0},
	} {
		if got := paceRate(tc.target, tc.congestedAt, now); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// stateBWE is an estimator whose target and congestion state the test
// sets.
type stateBWE struct {
	target int
	usage  string
}

func (b *stateBWE) AddStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return w
}
func (b *stateBWE) WriteRTCP([]rtcp.Packet, interceptor.Attributes) error { return nil }
func (b *stateBWE) GetTargetBitrate() int                                 { return b.target }
func (b *stateBWE) OnTargetBitrateChange(func(int))                       {}
func (b *stateBWE) GetStats() map[string]any                              { return map[string]any{"usage": b.usage} }
func (b *stateBWE) Close() error                                          { return nil }

// selectRig runs a subscriber's rounds of layer choice on an estimator
// the test steers, with no tracks.
type selectRig struct {
	p   *Peer
	bwe *stateBWE
	sel *simulcast.Selector
	st  selectState
	t0  time.Time
}

func newSelectRig(t *testing.T) *selectRig {
	t.Helper()
	h := newHarness(t, DefaultConfig())
	bwe := &stateBWE{}
	return &selectRig{
		p:   &Peer{s: h.s, log: h.s.log, queue: newSendQueue(8, h.s.m, nil), bwe: bwe},
		bwe: bwe, sel: simulcast.NewSelector(simulcast.SelectorConfig{}), t0: time.Now(),
	}
}

// round runs one round at t0+at with the estimator at target, its
// usage ("normal", "overuse") as given.
func (r *selectRig) round(at time.Duration, target int, usage string) {
	r.bwe.target, r.bwe.usage = target, usage
	r.st.run(r.p, r.sel, r.t0.Add(at))
}

// TestCongestionPacesTheWriter: a round of layer choice that finds the
// estimator congested paces the subscriber's writer at paceFactor times
// its target; the pace lasts paceLinger after the congestion, then ends.
func TestCongestionPacesTheWriter(t *testing.T) {
	r := newSelectRig(t)
	pace := func(at time.Duration, target int, usage string) int64 {
		r.round(at, target, usage)
		return r.p.queue.pace.Load()
	}
	if got := pace(0, 250_000, "normal"); got != 0 {
		t.Fatalf("paced at %d bit/s before any congestion", got)
	}
	if got, want := pace(500*time.Millisecond, 250_000, "overuse"), int64(paceFactor*250_000); got != want {
		t.Fatalf("congested: paced at %d bit/s, want %d", got, want)
	}
	if got, want := pace(500*time.Millisecond+paceLinger-time.Millisecond, 200_000, "normal"), int64(paceFactor*200_000); got != want {
		t.Fatalf("just within %v of the congestion: paced at %d bit/s, want %d", paceLinger, got, want)
	}
	if got := pace(500*time.Millisecond+paceLinger, 200_000, "normal"); got != 0 {
		t.Fatalf("%v after the congestion: paced at %d bit/s, want no pace", paceLinger, got)
	}
}
