package sendside

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// link is a simulated path in virtual time: a FIFO drained at rate
// bit/s, dropping what would wait more than queue, then delay; loss
// drops packets at random before the queue (nftables in the lab).
type link struct {
	rate  float64
	queue time.Duration
	delay time.Duration
	loss  float64
	free  time.Duration // when the bottleneck is next idle
	rng   *rand.Rand
	// stalls, if set, is a receiver short of CPU: it stamps packets
	// when it gets to read them, and during a stall it reads nothing.
	stalls *stalls
}

// stalls are the receiver's pauses: each lasts minFor-maxFor and the
// next begins minGap-maxGap after it ends, at random; a packet that
// arrives during one is stamped at its end, with all the others that
// waited, a few microseconds apart.
type stalls struct {
	minFor, maxFor, minGap, maxGap time.Duration
	rng                            *rand.Rand
	start, end                     time.Duration // the current or next stall
}

func (s *stalls) stamp(at time.Duration) time.Duration {
	for at >= s.end {
		s.start = s.end + s.pick(s.minGap, s.maxGap)
		s.end = s.start + s.pick(s.minFor, s.maxFor)
	}
	if at < s.start {
		return at
	}
	return s.end + (at-s.start)/100
}

func (s *stalls) pick(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

// pass returns when a packet of size bytes entering at t arrives, or
// false if it is dropped.
func (l *link) pass(t time.Duration, size int) (time.Duration, bool) {
	if l.loss > 0 && l.rng.Float64() < l.loss {
		return 0, false
	}
	start := max(t, l.free)
	if start-t > l.queue {
		return 0, false
	}
	l.free = start + time.Duration(float64(size*8)/l.rate*float64(time.Second))
	return l.free + l.delay, true
}

// sim drives an Estimator over a link: every 5 ms the sender sends what
// its pace allows (the estimate, or app if lower and app > 0) in
// 1200-byte packets; every 100 ms the receiver's transport-cc feedback
// (pion's recorder) goes back, arriving after the link's delay.
type sim struct {
	t *testing.T
	e estimator
	w interceptor.RTPWriter
	// sleep: each tick also sleeps simTick, for an estimator on the
	// clock of a synctest bubble (pion's GCC reads time.Now).
	sleep   bool
	l       *link
	now     time.Duration
	seq     uint16
	credit  float64
	rec     *twcc.Recorder
	pending []arrival // arrived at the receiver, not yet in feedback
	inbox   []feedback
	sent    int
	dropped int
	// pad is a rate of padding-only packets (probes) sent beside the
	// media, bit/s; padCredit its budget.
	pad       float64
	padCredit float64
}

type arrival struct {
	seq uint16
	at  time.Duration
}

type feedback struct {
	at   time.Duration
	pkts []rtcp.Packet
}

const (
	simPacket   = 1200
	simTick     = 5 * time.Millisecond
	simFeedback = 100 * time.Millisecond
	simTWCCID   = 3
	// simPadPacket: a probe packet, its 20-byte header (with the
	// transport-cc extension) and 255 bytes of padding, as the SFU's.
	simPadPacket = 275
)

var simEpoch = time.Unix(1_700_000_000, 0) //nolint:gochecknoglobals // test clock origin

// estimator is what the sim drives: Parley's Estimator, or pion's GCC
// to compare with.
type estimator interface {
	AddStream(*interceptor.StreamInfo, interceptor.RTPWriter) interceptor.RTPWriter
	WriteRTCP([]rtcp.Packet, interceptor.Attributes) error
	GetTargetBitrate() int
	GetStats() map[string]any
}

func newSim(t *testing.T, start int, l *link) *sim {
	e := New(Config{Initial: start, Min: 100_000, Max: 20_000_000})
	s := newSimWith(t, e, l)
	e.now = func() time.Time { return simEpoch.Add(s.now) }
	return s
}

// newSimWith drives e, on the clock of a synctest bubble if sleep.
func newSimWith(t *testing.T, e estimator, l *link) *sim {
	s := &sim{t: t, l: l, rec: twcc.NewRecorder(1), e: e}
	s.w = s.e.AddStream(&interceptor.StreamInfo{SSRC: 7,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: simTWCCID}}},
		interceptor.RTPWriterFunc(func(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) { return len(p), nil }))
	return s
}

// run advances d, sending at min(estimate, app) (app 0: the estimate).
func (s *sim) run(d time.Duration, app float64) {
	s.t.Helper()
	end := s.now + d
	payload := make([]byte, simPacket-20)
	for ; s.now < end; s.now += simTick {
		if s.sleep {
			time.Sleep(simTick)
		}
		for len(s.inbox) > 0 && s.inbox[0].at <= s.now {
			if err := s.e.WriteRTCP(s.inbox[0].pkts, nil); err != nil {
				s.t.Fatal(err)
			}
			s.inbox = s.inbox[1:]
		}
		rate := float64(s.e.GetTargetBitrate())
		if app > 0 {
			rate = min(rate, app)
		}
		s.credit = min(s.credit+rate*simTick.Seconds()/8, 4*simPacket)
		for s.credit >= simPacket {
			s.credit -= simPacket
			s.send(&rtp.Header{Version: 2, SSRC: 7, SequenceNumber: s.seq}, payload, simPacket)
		}
		s.padCredit = min(s.padCredit+s.pad*simTick.Seconds()/8, 4*simPadPacket)
		for s.padCredit >= simPadPacket {
			s.padCredit -= simPadPacket
			s.send(&rtp.Header{Version: 2, SSRC: 7, SequenceNumber: s.seq, Padding: true, PaddingSize: simPadPacket - 20}, nil, simPadPacket)
		}
		if s.now%simFeedback == 0 {
			n := 0
			for _, a := range s.pending {
				if a.at > s.now {
					break
				}
				s.rec.Record(7, a.seq, a.at.Microseconds())
				n++
			}
			s.pending = s.pending[n:]
			if n > 0 {
				s.inbox = append(s.inbox, feedback{s.now + s.l.delay, s.rec.BuildFeedbackPacket()})
			}
		}
	}
}

// send writes one packet through the estimator and the link.
func (s *sim) send(h *rtp.Header, payload []byte, size int) {
	s.t.Helper()
	if err := h.SetExtension(simTWCCID, []byte{byte(s.seq >> 8), byte(s.seq)}); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.w.Write(h, payload, nil); err != nil {
		s.t.Fatal(err)
	}
	s.sent++
	if at, ok := s.l.pass(s.now, size); ok {
		if s.l.stalls != nil {
			at = s.l.stalls.stamp(at)
		}
		s.pending = append(s.pending, arrival{s.seq, at})
	} else {
		s.dropped++
	}
	s.seq++
}

// span runs n steps of step at app (see run) and returns the lowest
// and highest estimate seen at their ends, and now.
func (s *sim) span(n int, step time.Duration, app float64) (lo, hi float64) {
	lo, hi = s.estimate(), s.estimate()
	for range n {
		s.run(step, app)
		lo, hi = min(lo, s.estimate()), max(hi, s.estimate())
	}
	return lo, hi
}

func (s *sim) estimate() float64 { return float64(s.e.GetTargetBitrate()) }

// queueDelay is how long a packet sent now would wait at the bottleneck.
func (s *sim) queueDelay() time.Duration { return max(0, s.l.free-s.now) }

// TestSettlesUnderACap: a sender that fills its estimate, starting at 3
// Mbit/s on a 1 Mbit/s path with a 200 ms queue (the lab's tbf), comes
// down to the path within 5 s and then stays around it: not above, not
// far below, with the queue kept short.
func TestSettlesUnderACap(t *testing.T) {
	s := newSim(t, 3_000_000, &link{rate: 1_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	s.run(5*time.Second, 0)
	if e := s.estimate(); e > 1_100_000 {
		t.Fatalf("after 5 s on a 1 Mbit/s path the estimate is %.0f", e)
	}
	lo, hi := 1e12, 0.0
	var worstQueue time.Duration
	sent0, dropped0 := s.sent, s.dropped
	for range 100 { // 20 s more
		s.run(200*time.Millisecond, 0)
		lo, hi = min(lo, s.estimate()), max(hi, s.estimate())
		worstQueue = max(worstQueue, s.queueDelay())
	}
	loss := float64(s.dropped-dropped0) / float64(s.sent-sent0)
	t.Logf("over 20 s: estimate %.0f-%.0f bit/s, longest queue %v, loss %.2f%%", lo, hi, worstQueue, 100*loss)
	if lo < 500_000 || hi > 1_300_000 {
		t.Errorf("estimate swung over %.0f-%.0f on a 1 Mbit/s path", lo, hi)
	}
	if loss > 0.02 {
		t.Errorf("loss %.2f%% while settled", 100*loss)
	}
}

// TestClimbsWhenThereIsRoom: from 300 kbit/s on an 8 Mbit/s path a
// sender that fills its estimate more than doubles it within 15 s (GCC's
// 8% a second, compounded) and never causes a standing queue.
func TestClimbsWhenThereIsRoom(t *testing.T) {
	s := newSim(t, 300_000, &link{rate: 8_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	s.run(15*time.Second, 0)
	if e := s.estimate(); e < 700_000 {
		t.Fatalf("after 15 s with room the estimate is %.0f, want over 700000", e)
	}
	if q := s.queueDelay(); q > 20*time.Millisecond {
		t.Errorf("queue of %v with a path 10 times the estimate", q)
	}
}

// TestAppLimitedIsNotCut: a sender that sends 1 Mbit/s on a clean 10
// Mbit/s path is not told it has less (a delay signal from nothing);
// nor is it told much more than it has shown.
func TestAppLimitedIsNotCut(t *testing.T) {
	s := newSim(t, 3_000_000, &link{rate: 10_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	s.run(2*time.Second, 1_000_000)
	lo, hi := s.span(50, 200*time.Millisecond, 1_000_000)
	t.Logf("estimate %.0f-%.0f bit/s sending 1 Mbit/s", lo, hi)
	if lo < 1_000_000 {
		t.Errorf("estimate fell to %.0f while 1 Mbit/s crossed a 10 Mbit/s path cleanly", lo)
	}
	if hi > 1_700_000 {
		t.Errorf("estimate rose to %.0f on 1 Mbit/s acknowledged", hi)
	}
}

// TestHeavyLossCuts: 20% random loss with no queue at all (a lossy
// radio link): the loss-based rate brings the estimate down.
func TestHeavyLossCuts(t *testing.T) {
	s := newSim(t, 2_000_000, &link{rate: 50_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond,
		loss: 0.2, rng: rand.New(rand.NewPCG(1, 2))})
	s.run(5*time.Second, 0)
	if e := s.estimate(); e > 1_000_000 {
		t.Fatalf("after 5 s at 20%% loss the estimate is %.0f, want under 1 Mbit/s", e)
	}
	st := s.e.GetStats()
	if l, _ := st["averageLoss"].(float64); l < 0.1 || l > 0.3 {
		t.Errorf("averageLoss %v, want about 0.2", st["averageLoss"])
	}
}

// TestModerateLossHolds: 5% random loss on a path with room (lab
// scenario 3): GCC holds its rate between 2% and 10% of loss, so the
// estimate of a sender of 800 kbit/s keeps the headroom a layer step
// needs (a fifth above what it sends), though some of the judged
// intervals, a few dozen packets each, count more than 10% by chance
// (cut on those alone it fell to 808 kbit/s).
func TestModerateLossHolds(t *testing.T) {
	s := newSim(t, 1_500_000, &link{rate: 10_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond,
		loss: 0.05, rng: rand.New(rand.NewPCG(3, 4))})
	s.run(2*time.Second, 800_000)
	lo, _ := s.span(150, 200*time.Millisecond, 800_000)
	t.Logf("lowest estimate over 30 s at 5%% loss, sending 800 kbit/s: %.0f", lo)
	if lo < 960_000 {
		t.Errorf("estimate fell to %.0f at 5%% random loss with room on the path, want 960000 or more", lo)
	}
}

// TestReceiverStallsAreNoQueue: a receiving browser short of CPU (the
// lab's three Chromiums on two cores) reads its socket late, in
// bursts: packets that waited through a 20-80 ms stall are stamped
// together at its end. That is no queue on the path, and a sender of
// 1.5 Mbit/s on a clean 10 Mbit/s path keeps an estimate above what it
// sends. In the lab (2026-12-06 20:01) an uncapped subscriber's
// estimate fell from 2 Mbit/s to 190-540 kbit/s so, step by step at
// 0.85 times a falling rate sent, before arrivals in a burst joined the
// group before them as they do in pion's GCC and libwebrtc.
func TestReceiverStallsAreNoQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := newSim(t, 3_000_000, &link{rate: 10_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond,
		stalls: &stalls{minFor: 20 * time.Millisecond, maxFor: 80 * time.Millisecond,
			minGap: 100 * time.Millisecond, maxGap: 400 * time.Millisecond, rng: rng}})
	const app = 1_500_000
	s.run(2*time.Second, app)
	lo, overuses := 1e12, 0
	for range 150 {
		s.run(200*time.Millisecond, app)
		lo = min(lo, s.estimate())
		if u, _ := s.e.GetStats()["usage"].(string); u == "overuse" {
			overuses++
		}
	}
	t.Logf("lowest estimate over 30 s sending %d bit/s to a stalling receiver: %.0f; overuse in %d of 150 samples", app, lo, overuses)
	if lo < app {
		t.Errorf("estimate fell to %.0f, under the %d bit/s sent on a path with no queue", lo, app)
	}
}

// TestProbeOverflowCutsFromWhatTheLinkCarried: a sender whose media
// (250 kbit/s) is well below a 500 kbit/s path adds a probe of padding
// that fills the path's queue. The cut that follows is from what the
// path carried, media and padding (about 500 kbit/s), not from the media
// alone: 0.85 of that took a capped subscriber to 100 kbit/s in the lab
// (scenario 2, 2026-12-07).
func TestProbeOverflowCutsFromWhatTheLinkCarried(t *testing.T) {
	s := newSim(t, 400_000, &link{rate: 500_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	s.run(3*time.Second, 250_000)
	before := s.estimate()
	s.pad = 750_000
	s.run(300*time.Millisecond, 250_000)
	s.pad = 0
	lo, _ := s.span(10, 100*time.Millisecond, 250_000)
	t.Logf("estimate %.0f before the probe, at least %.0f after it", before, lo)
	if st := s.e.GetStats(); st["ackedMediaBitrate"].(int) > 300_000 {
		t.Errorf("media acknowledged at %d bit/s; 250 kbit/s were sent", st["ackedMediaBitrate"])
	}
	if lo < 300_000 {
		t.Errorf("estimate fell to %.0f after a probe filled a 500 kbit/s path; 0.85 of the path is 425000, of the media 212500", lo)
	}
	if lo >= before {
		t.Errorf("estimate %.0f not cut by a probe that filled the queue (%.0f before)", lo, before)
	}
}

// TestProbesDoNotRaiseTheBound: padding that a path carries does not
// raise the estimate above 1.5 times the media: the probe's figures are
// the SFU's probed floor, and a shaper's burst allowance can carry a
// short probe above the path's rate.
func TestProbesDoNotRaiseTheBound(t *testing.T) {
	s := newSim(t, 300_000, &link{rate: 10_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	hi := 0.0
	for i := range 20 {
		if i%4 == 0 {
			s.pad = 1_000_000
		}
		s.run(200*time.Millisecond, 250_000)
		s.pad = 0
		hi = max(hi, s.estimate())
	}
	t.Logf("estimate at most %.0f, 250 kbit/s of media and probes of 1 Mbit/s", hi)
	if bound := rateAckedCap*250_000 + rateAckedSlack; hi > 1.1*bound {
		t.Errorf("estimate rose to %.0f on probes; the media's bound is %.0f", hi, bound)
	}
}

// TestProbedRateHolds: a probe's result raises the estimate at once, and
// it stays there while the media, app-limited, is still far below it
// (the layers switch up key frame by key frame), for creditFor; on a
// path that does not carry it, the first overuse cuts it as any rate.
func TestProbedRateHolds(t *testing.T) {
	s := newSim(t, 300_000, &link{rate: 10_000_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	s.run(2*time.Second, 250_000)
	s.e.(*Estimator).Probed(2_000_000)
	lo, _ := s.span(10, 200*time.Millisecond, 250_000)
	t.Logf("estimate at least %.0f for 2 s after a probe of 2 Mbit/s, 250 kbit/s of media", lo)
	if lo < 2_000_000 {
		t.Errorf("estimate fell to %.0f after a probe showed 2 Mbit/s on a clean path", lo)
	}
	// Past creditFor with the media still at 250 kbit/s (the tiles
	// want no more), the bound on the media holds again.
	s.run(creditFor, 250_000)
	if bound := rateAckedCap*250_000 + rateAckedSlack; s.estimate() > 1.1*bound {
		t.Errorf("estimate %.0f %v after the probe, 250 kbit/s of media: want the bound, %.0f", s.estimate(), 2*time.Second+creditFor, bound)
	}

	capped := newSim(t, 300_000, &link{rate: 500_000, queue: 200 * time.Millisecond, delay: 20 * time.Millisecond})
	capped.run(2*time.Second, 250_000)
	capped.e.(*Estimator).Probed(2_000_000)
	capped.run(3*time.Second, 0) // the sender fills the estimate
	if got := capped.estimate(); got > 700_000 {
		t.Errorf("estimate %.0f 3 s after a false probe result of 2 Mbit/s on a 500 kbit/s path", got)
	}
}
