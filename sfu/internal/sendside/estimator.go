// Package sendside is a send-side bandwidth estimator of Parley's own:
// the GCC algorithm (draft-ietf-rmcat-gcc-02: a delay trend against an
// adaptive threshold driving an AIMD rate, capped by a loss-based rate)
// over transport-cc feedback, on sfu/internal/sendhistory's ring. It
// implements pion's cc.BandwidthEstimator, so it plugs into pion's
// congestion-control interceptor where pion's GCC does.
//
// Why not pion's GCC: its per-packet bookkeeping (a map and a list with
// an allocation for every packet, room for 250) cost the SFU about 10%
// of its CPU in a 10 x 10 load run (docs/benchmarks.md). Here a packet
// sent costs a header-extension read and a store into a ring.
package sendside

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/parleyhq/parley/sfu/internal/sendhistory"
)

// Config bounds the estimate (bit/s).
type Config struct {
	Initial, Min, Max int
}

// Estimator is one sender's (one subscriber connection's) estimate.
type Estimator struct {
	cfg  Config
	hist sendhistory.History
	now  func() time.Time

	mu        sync.Mutex
	acks      []sendhistory.Ack
	trend     trendline
	detector  detector
	delay     aimd
	loss      lossRate
	acked     ackedRate
	target    int
	usage     usage
	lastTrend float64
	onChange  func(int)
}

// New returns an estimator starting at cfg.Initial.
func New(cfg Config) *Estimator {
	e := &Estimator{cfg: cfg, now: time.Now, detector: newDetector(), target: cfg.Initial}
	e.delay.rate = float64(cfg.Initial)
	e.loss.rate = float64(cfg.Initial)
	return e
}

// AddStream records every packet the stream sends with a transport-wide
// sequence number; a stream without the extension is passed through.
func (e *Estimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, x := range info.RTPHeaderExtensions {
		if x.URI == sdp.TransportCCURI {
			id = uint8(x.ID) //nolint:gosec // extension ids are 1-255
		}
	}
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if v := h.GetExtension(id); len(v) >= 2 {
			seq := binary.BigEndian.Uint16(v)
			if h.Padding && len(payload) == 0 {
				// A probe: Header.MarshalSize leaves the padding out,
				// and a probe is mostly padding (see ackedRate).
				e.hist.SentPadding(seq, e.now(), h.MarshalSize()+int(h.PaddingSize))
			} else {
				e.hist.Sent(seq, e.now(), h.MarshalSize()+len(payload))
			}
		}
		return w.Write(h, payload, a)
	})
}

// WriteRTCP reads the transport-cc feedback among pkts.
func (e *Estimator) WriteRTCP(pkts []rtcp.Packet, _ interceptor.Attributes) error {
	var notify func(int)
	var target int
	for _, p := range pkts {
		fb, ok := p.(*rtcp.TransportLayerCC)
		if !ok {
			continue
		}
		e.mu.Lock()
		var err error
		e.acks, err = e.hist.Feedback(fb, e.acks[:0])
		changed := e.onFeedbackLocked(e.now(), e.acks)
		if changed && e.onChange != nil {
			notify, target = e.onChange, e.target
		}
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if notify != nil {
		notify(target)
	}
	return nil
}

// onFeedbackLocked runs one feedback's acknowledgments through the
// detectors and reports whether the target changed.
func (e *Estimator) onFeedbackLocked(now time.Time, acks []sendhistory.Ack) bool {
	if len(acks) == 0 {
		return false
	}
	// The loss counted is the media's: a probe's padding is most of its
	// packets (255 bytes each, to the media's 1,200), and one that
	// overflowed a queue read as 20% loss, which the loss-based rate
	// cut by a tenth beyond the delay's cut. Its own figures judge the
	// probe (sfu/internal/probe); the loss-based rate is GCC's answer
	// to loss the media suffers, which the classic GCC reads from the
	// media streams' receiver reports.
	lost, counted, bytes, media := 0, 0, 0, 0
	var first, last time.Duration
	var sentFirst, sentLast time.Time
	timed := false
	for _, a := range acks {
		if !a.Padding {
			counted++
		}
		if !a.Received {
			if !a.Padding {
				lost++
			}
			continue
		}
		bytes += a.Size
		if !a.Padding {
			media += a.Size
		}
		if !a.Timed {
			continue
		}
		if !timed || a.Arrival < first {
			first = a.Arrival
		}
		if !timed || a.Sent.Before(sentFirst) {
			sentFirst = a.Sent
		}
		if a.Sent.After(sentLast) {
			sentLast = a.Sent
		}
		last = max(last, a.Arrival)
		timed = true
		if trend, gap, ok := e.trend.add(a); ok {
			e.lastTrend = trend
			e.usage = e.detector.detect(trend, ms(gap), ms(a.Arrival))
		}
	}
	e.loss.add(lost, counted)
	if timed {
		e.acked.add(first, last, sentFirst, sentLast, bytes, media)
	}
	acked := e.acked.rates()
	e.delay.update(now, e.usage, acked)
	e.delay.rate = e.clamp(e.delay.rate)
	e.loss.rate = e.clamp(e.loss.update(now, e.delay.rate))
	rate := min(e.delay.rate, e.loss.rate)
	t := int(e.clamp(rate))
	if t == e.target {
		return false
	}
	e.target = t
	return true
}

func (e *Estimator) clamp(r float64) float64 {
	return min(max(r, float64(e.cfg.Min)), float64(e.cfg.Max))
}

// Probed takes what a bandwidth probe showed the path carries, bit/s
// (the SFU's probed floor, sfu/internal/probe): the estimate rises to it
// at once, as libwebrtc's delay-based estimate takes a probe's result,
// and the bound on the media acknowledged does not bring it back down
// for creditFor, while the media catches up. A later overuse cuts it as
// any rate.
func (e *Estimator) Probed(bps int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.clamp(float64(bps))
	e.delay.probed(e.now(), r)
	e.loss.rate = max(e.loss.rate, r)
	e.target = int(e.clamp(min(e.delay.rate, e.loss.rate)))
}

// GetTargetBitrate is the estimate in bit/s.
func (e *Estimator) GetTargetBitrate() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.target
}

// OnTargetBitrateChange sets a function called (not under any lock)
// with each new estimate.
func (e *Estimator) OnTargetBitrateChange(f func(int)) {
	e.mu.Lock()
	e.onChange = f
	e.mu.Unlock()
}

// GetStats names the estimator's state with the keys pion's GCC uses
// for the same things (the SFU reads usage, state and averageLoss).
func (e *Estimator) GetStats() map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return map[string]any{
		"usage":              e.usage.String(),
		"state":              e.delay.state.String(),
		"averageLoss":        e.loss.average,
		"lossTargetBitrate":  int(e.loss.rate),
		"delayTargetBitrate": int(e.delay.rate),
		"delayEstimate":      e.lastTrend,
		"delayThreshold":     e.detector.threshold,
		"ackedBitrate":       int(e.acked.rate()),
		"ackedMediaBitrate":  int(e.acked.rates().media),
		"probedBitrate":      e.delay.creditAt(e.now()),
	}
}

// Close has nothing to release: the estimator runs on its callers'
// goroutines.
func (e *Estimator) Close() error { return nil }
