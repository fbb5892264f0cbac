package chatload

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
		tol    time.Duration
	}{
		{"empty", nil, 0.5, 0, 0},
		{"single", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond, 0},
		{"median of 1..1000 ms", ramp(1000, time.Millisecond), 0.5, 500 * time.Millisecond, fineWidth},
		{"p99 of 1..1000 ms", ramp(1000, time.Millisecond), 0.99, 990 * time.Millisecond, fineWidth},
		{"p100 is the max", ramp(1000, time.Millisecond), 1, 1000 * time.Millisecond, 0},
		{"coarse range", []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second}, 0.5, 3 * time.Second, coarseWidth},
		{"beyond the last bucket", []time.Duration{time.Minute, 2 * time.Minute}, 0.5, coarseLimit, 0},
		{"negative counts as zero", []time.Duration{-time.Second}, 0.5, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			got := h.Quantile(tc.q)
			if got < tc.want || got > tc.want+tc.tol {
				t.Errorf("Quantile(%g) = %s, want %s (+%s)", tc.q, got, tc.want, tc.tol)
			}
			if h.Count() != uint64(len(tc.values)) {
				t.Errorf("Count = %d, want %d", h.Count(), len(tc.values))
			}
		})
	}
}

func ramp(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

func TestHistogramConcurrentMatchesSort(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(3, 4))
	vals := make([]time.Duration, 40000)
	for i := range vals {
		vals[i] = time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for _, v := range vals[w*10000 : (w+1)*10000] {
				h.Record(v)
			}
		})
	}
	wg.Wait()
	sorted := append([]time.Duration(nil), vals...)
	slices.Sort(sorted)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := sorted[int(q*float64(len(sorted)))-1]
		got := h.Quantile(q)
		if got < exact || got > exact+fineWidth {
			t.Errorf("p%g = %s, exact %s", q*100, got, exact)
		}
	}
	if h.Max() != sorted[len(sorted)-1] {
		t.Errorf("Max = %s, want %s", h.Max(), sorted[len(sorted)-1])
	}
	var sum time.Duration
	for _, v := range vals {
		sum += v
	}
	if mean := sum / time.Duration(len(vals)); h.Mean() != mean {
		t.Errorf("Mean = %s, want %s", h.Mean(), mean)
	}
}

func TestStepResultOK(t *testing.T) {
	good := StepResult{Sent: 100, Acked: 100, Deliveries: 9900, Expected: 9900, DeliveryP99: 20 * time.Millisecond}
	cases := []struct {
		name string
		mod  func(*StepResult)
		want bool
	}{
		{"all delivered under the limit", func(*StepResult) {}, true},
		{"p99 at the limit", func(r *StepResult) { r.DeliveryP99 = 50 * time.Millisecond }, false},
		{"a lost delivery", func(r *StepResult) { r.Deliveries-- }, false},
		{"an unacked send", func(r *StepResult) { r.Acked-- }, false},
		{"an error", func(r *StepResult) { r.Errors = map[string]uint64{"rate_limited": 1} }, false},
		{"nothing sent", func(r *StepResult) { *r = StepResult{} }, false},
	}
	for _, tc := range cases {
		r := good
		tc.mod(&r)
		if got := r.OK(50 * time.Millisecond); got != tc.want {
			t.Errorf("%s: OK = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLiveHeap(t *testing.T) {
	// goal = live + (live + stacks) x 1 with GOGC=100: live 40 MiB,
	// stacks 8 MiB -> goal 88 MiB.
	m := map[string]float64{"go_gc_gogc_percent": 100, "go_memstats_next_gc_bytes": 88 << 20,
		"go_memstats_stack_inuse_bytes": 8 << 20, "go_memstats_heap_alloc_bytes": 60 << 20}
	if got := liveHeap(m); got != 40<<20 {
		t.Errorf("liveHeap = %v, want %v", got, 40<<20)
	}
	m["go_memstats_heap_alloc_bytes"] = 3 << 20 // a fresh process below the minimum goal
	if got := liveHeap(m); got != 3<<20 {
		t.Errorf("liveHeap = %v, want the allocated heap %v", got, 3<<20)
	}
}

func TestConvLog(t *testing.T) {
	l := NewConvLog()
	msg := func(seq int64, id string) Message { return Message{Seq: seq, ClientMsgID: id, Kind: "text", Text: id} }
	if l.Apply(msg(1, "a")) {
		t.Error("seq 1 on an empty log reported a gap")
	}
	if !l.Apply(msg(3, "c")) {
		t.Error("seq 3 after 1 did not report a gap")
	}
	if l.Contiguous() != 1 || l.Max() != 3 {
		t.Errorf("contiguous %d max %d, want 1 and 3", l.Contiguous(), l.Max())
	}
	if l.Apply(msg(2, "b")) {
		t.Error("filling the gap still reports one")
	}
	if l.Contiguous() != 3 {
		t.Errorf("contiguous %d, want 3", l.Contiguous())
	}
	l.Apply(msg(2, "b")) // a repeated push: ignored
	if len(l.Conflicts()) != 0 {
		t.Errorf("identical repeat counted as conflict: %v", l.Conflicts())
	}
	l.Apply(msg(2, "other"))
	if len(l.Conflicts()) != 1 {
		t.Errorf("a different event at a held seq was not flagged: %v", l.Conflicts())
	}
	got := l.Messages()
	if len(got) != 3 || got[0].ClientMsgID != "a" || got[1].ClientMsgID != "b" || got[2].ClientMsgID != "c" {
		t.Errorf("Messages = %+v", got)
	}
}
