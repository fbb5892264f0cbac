package probe

import (
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// feed sends the recorder n probe packets of size bytes every gap from
// t0 with sequence numbers from seq, has the receiver get each (unless
// drop says it was lost) stretch times the gap apart, and hands the
// receiver's transport-cc feedback to the recorder.
func feed(t *testing.T, r *Recorder, seq uint16, n, size int, gap time.Duration, stretch float64, drop func(int) bool) {
	t.Helper()
	t0 := time.Unix(1000, 0)
	rx := twcc.NewRecorder(1)
	for i := range n {
		s := seq + uint16(i)
		r.Sent(s, size, t0.Add(time.Duration(i)*gap))
		if drop != nil && drop(i) {
			continue
		}
		at := t0.Add(time.Duration(float64(i) * stretch * float64(gap)))
		rx.Record(1, s, at.UnixMicro())
	}
	// The last packet's arrival closes the feedback's range.
	for _, p := range rx.BuildFeedbackPacket() {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			r.Feedback(fb)
		}
	}
}

func TestRecorderRates(t *testing.T) {
	for _, c := range []struct {
		name    string
		stretch float64
		drop    func(int) bool
		lost    int
	}{
		{"as sent", 1, nil, 0},
		{"queued", 2, nil, 0},
		{"lossy", 1, func(i int) bool { return i%5 == 2 }, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Recorder
			r.StartCluster(7)
			// 40 packets of 250 bytes every 2 ms: 1 Mbit/s.
			feed(t, &r, 65530, 40, 250, 2*time.Millisecond, c.stretch, c.drop)
			res := r.Result(7)
			if res.Sent != 40 || res.Lost != c.lost || res.Received != 40-c.lost || res.Bytes != 40*250 {
				t.Fatalf("result %+v, want 40 sent, %d lost", res, c.lost)
			}
			if res.SendRate < 990_000 || res.SendRate > 1_010_000 {
				t.Errorf("send rate %d, want 1 Mbit/s", res.SendRate)
			}
			want := 1_000_000 / c.stretch
			if c.drop != nil {
				want *= float64(40-c.lost-1) / 39 // fewer bytes over the same span
			}
			if got := float64(res.RecvRate); got < 0.97*want || got > 1.03*want {
				t.Errorf("receive rate %d, want about %.0f", res.RecvRate, want)
			}
			if other := r.Result(8); other.Sent != 0 {
				t.Errorf("cluster 8: %+v, want nothing", other)
			}
		})
	}
}

// TestRecorderOutsideCluster: packets sent before any cluster started
// are not recorded, and feedback about packets it never recorded (the
// media's) changes nothing.
func TestRecorderOutsideCluster(t *testing.T) {
	var r Recorder
	feed(t, &r, 100, 10, 250, time.Millisecond, 1, nil)
	if res := r.Result(1); res.Sent != 0 {
		t.Fatalf("recorded before a cluster: %+v", res)
	}
	r.StartCluster(1)
	feed(t, &r, 200, 10, 250, time.Millisecond, 1, nil)
	r.StartCluster(2)
	// Feedback about 300-309 (not sent as probes) leaves cluster 1 alone.
	rx := twcc.NewRecorder(1)
	for i := range 10 {
		rx.Record(1, uint16(300+i), int64(i)*1000)
	}
	for _, p := range rx.BuildFeedbackPacket() {
		r.Feedback(p.(*rtcp.TransportLayerCC))
	}
	if res := r.Result(1); res.Sent != 10 || res.Received != 10 {
		t.Fatalf("cluster 1: %+v, want 10 sent and received", res)
	}
}

// TestRecorderTail: a cluster whose first packets a shaper's bucket
// carried as sent and whose last ones queued shows the queue in its
// second half's rates, though over the whole cluster it looks carried.
func TestRecorderTail(t *testing.T) {
	var r Recorder
	r.StartCluster(3)
	t0 := time.Unix(1000, 0)
	rx := twcc.NewRecorder(1)
	const gap = 2 * time.Millisecond
	for i := range 40 {
		sent := t0.Add(time.Duration(i) * gap)
		r.Sent(uint16(i), 250, sent)
		// From the 34th packet on, each waits 1.4 ms more than the last.
		rx.Record(1, uint16(i), sent.Add(time.Duration(max(0, i-33))*1400*time.Microsecond).UnixMicro())
	}
	for _, p := range rx.BuildFeedbackPacket() {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			r.Feedback(fb)
		}
	}
	res := r.Result(3)
	whole := float64(res.RecvRate) / float64(res.SendRate)
	tail := float64(res.TailRecvRate) / float64(res.TailSendRate)
	t.Logf("%+v: received at %.2f of the send rate, the second half at %.2f", res, whole, tail)
	if whole < minRateRatio {
		t.Errorf("whole cluster received at %.2f of its send rate, want at least %v (the test's premise)", whole, minRateRatio)
	}
	if tail >= minRateRatio || res.TailSendRate < 900_000 {
		t.Errorf("second half sent at %d, received at %.2f of it; want 1 Mbit/s, below %v", res.TailSendRate, tail, minRateRatio)
	}
	if delivered(res) {
		t.Error("judged delivered: the queue in its second half says the link is full")
	}
}
