package sfu

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// bottleneck is a simulated downlink: a drop-tail queue drained at a
// fixed rate (what `tc tbf` does), with the receiver's TWCC recorder on
// the far side.
type bottleneck struct {
	rate     int           // bit/s
	maxDelay time.Duration // queue limit, as time to drain
	free     time.Time     // when the link finishes sending what it holds
	inFlight []arrival
	rec      *twcc.Recorder
}

type arrival struct {
	seq uint16
	at  time.Time
}

// send queues one packet of n bytes with transport-wide number seq, or
// drops it when the queue is full.
func (b *bottleneck) send(now time.Time, seq uint16, n int) {
	start := now
	if b.free.After(now) {
		start = b.free
	}
	if start.Sub(now) > b.maxDelay {
		return // tail drop
	}
	b.free = start.Add(time.Duration(n*8) * time.Second / time.Duration(b.rate))
	b.inFlight = append(b.inFlight, arrival{seq: seq, at: b.free})
}

// feedback records the packets that have arrived by now and returns the
// receiver's transport-cc feedback.
func (b *bottleneck) feedback(now time.Time) []arrival {
	n := 0
	for n < len(b.inFlight) && !b.inFlight[n].at.After(now) {
		b.rec.Record(1, b.inFlight[n].seq, b.inFlight[n].at.UnixMicro())
		n++
	}
	got := b.inFlight[:n]
	b.inFlight = b.inFlight[n:]
	return got
}

// runLink sends one simulcast camera (q/h/f at 150k/500k/2M bit/s) and
// one 32 kbit/s audio track over a link of the given rate for d, with
// GCC estimating from the link's transport-cc feedback and the Selector
// choosing the camera's layer from the estimate every selectInterval, as
// the subscriber's selectLoop does. It returns the layer chosen at the
// end and the last estimate.
func runLink(t *testing.T, rate int, d time.Duration) (simulcast.Layer, int) {
	t.Helper()
	bwe, err := gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(bweInitialBitrate),
		gcc.SendSideBWEMinBitrate(bweMinBitrate), gcc.SendSideBWEMaxBitrate(bweMaxBitrate),
		gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bwe.Close() }()
	link := &bottleneck{rate: rate, maxDelay: 400 * time.Millisecond, rec: twcc.NewRecorder(9)}
	const extID = 5
	info := &interceptor.StreamInfo{SSRC: 1, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{
		{URI: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", ID: extID}}}
	var twccSeq uint16
	w := bwe.AddStream(info, interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		link.send(time.Now(), twccSeq-1, h.MarshalSize()+len(p))
		return len(p), nil
	}))
	write := func(n int) {
		ext, _ := (&rtp.TransportCCExtension{TransportSequence: twccSeq}).Marshal()
		twccSeq++
		h := &rtp.Header{Version: 2, SSRC: 1, SequenceNumber: twccSeq}
		if err := h.SetExtension(extID, ext); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(h, make([]byte, n), nil); err != nil {
			t.Fatal(err)
		}
	}

	layers := []simulcast.LayerInfo{{Width: 320, Height: 180, Bitrate: 150_000},
		{Width: 640, Height: 360, Bitrate: 500_000}, {Width: 1280, Height: 720, Bitrate: 2_000_000}}
	tracks := []simulcast.TrackInfo{
		{ID: "audio", Kind: simulcast.Audio, Layers: []simulcast.LayerInfo{{Bitrate: 32_000}}},
		{ID: "camera", Kind: simulcast.Camera, Visible: true, Layers: layers},
	}
	sel := simulcast.NewSelector(simulcast.SelectorConfig{})
	var dec []simulcast.Decision
	layer := simulcast.Layer(2)
	const step = 10 * time.Millisecond // one 100 fps tick: audio every 20 ms, video frames every 30 ms
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		now := time.Now()
		if i%2 == 0 {
			write(80) // an Opus frame
		}
		if i%3 == 0 && layer != simulcast.None {
			frame := layers[layer].Bitrate * 3 / 100 / 8 // 30 ms of the layer
			for ; frame > 0; frame -= 1200 {
				write(min(frame, 1200))
			}
		}
		if i%5 == 0 { // Chrome sends transport-cc feedback about every 50 ms
			link.feedback(now)
			if err := bwe.WriteRTCP(link.rec.BuildFeedbackPacket(), nil); err != nil {
				t.Fatal(err)
			}
		}
		if i%int(selectInterval/step) == 0 {
			dec, _ = sel.Select(now, bwe.GetTargetBitrate(), tracks, dec)
			layer = dec[1].Layer
		}
		time.Sleep(step)
	}
	return layer, bwe.GetTargetBitrate()
}

// TestEstimateChoosesLayers: GCC, fed the transport-cc feedback of a
// capped link, settles on an estimate that makes the selector send the
// layer the link carries: the low layer on 300 kbit/s, the middle one on
// 1.2 Mbit/s, the top one on 10 Mbit/s.
func TestEstimateChoosesLayers(t *testing.T) {
	for _, c := range []struct {
		name string
		rate int
		want simulcast.Layer
	}{
		{"300k", 300_000, 0},
		{"1200k", 1_200_000, 1},
		{"10M", 10_000_000, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got, est := runLink(t, c.rate, 20*time.Second)
				t.Logf("link %d bit/s: estimate %d bit/s, layer %d", c.rate, est, got)
				if got != c.want {
					t.Errorf("link %d bit/s: layer %d (estimate %d bit/s), want %d", c.rate, got, est, c.want)
				}
			})
		})
	}
}

// TestFallingEstimateWakesLayerChoice: a target well below the one the
// last round used wakes the layer choice (once per fall, not at each
// report); a small dip, a rise, or no round yet does not.
func TestFallingEstimateWakesLayerChoice(t *testing.T) {
	p := &Peer{viewed: make(chan struct{}, 1)}
	woken := func() bool {
		select {
		case <-p.viewed:
			return true
		default:
			return false
		}
	}
	p.estimateChanged(100_000)
	if woken() {
		t.Fatal("woken before any round")
	}
	p.fall.ran(3_000_000)
	for _, b := range []int{2_900_000, 2_600_000, 3_500_000} {
		if p.estimateChanged(b); woken() {
			t.Fatalf("woken by %d bit/s after a round at 3 Mbit/s", b)
		}
	}
	if p.estimateChanged(2_500_000); !woken() {
		t.Fatal("2.5 Mbit/s after a round at 3 Mbit/s did not wake the layer choice")
	}
	p.fall.ran(2_500_000) // the round it woke
	if p.estimateChanged(2_400_000); woken() {
		t.Fatal("woken again by the same fall")
	}
}

// TestNoRiseSoonAfterCongestion: within riseAfterCongestion of the
// last round that saw congestion, the estimate the layers are chosen on
// does not rise above its value then (GCC's swing up under a cap); a
// fall goes through at once, and after the wait the rise does too.
func TestNoRiseSoonAfterCongestion(t *testing.T) {
	r := newSelectRig(t)
	round := func(at time.Duration, target int, usage string) int64 {
		r.round(at, target, usage)
		return r.p.estimate.Load()
	}
	if got := round(0, 250_000, "overuse"); got != 250_000 {
		t.Fatalf("congested: estimate %d, want GCC's 250000", got)
	}
	if got := round(time.Second, 530_000, "normal"); got != 250_000 {
		t.Fatalf("1 s after the congestion GCC swung to 530k: estimate %d, want it held at 250000", got)
	}
	if got := round(1500*time.Millisecond, 200_000, "normal"); got != 200_000 {
		t.Fatalf("a fall soon after the congestion: estimate %d, want 200000", got)
	}
	if got := round(riseAfterCongestion, 530_000, "normal"); got != 530_000 {
		t.Fatalf("%v after the congestion: estimate %d, want GCC's 530000", riseAfterCongestion, got)
	}
}
