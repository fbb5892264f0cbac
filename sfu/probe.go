package sfu

import (
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/parleyhq/parley/sfu/internal/probe"
	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// Bandwidth probing (issue #10): when a subscriber's estimate is below
// what its tiles want, its selectLoop sends short clusters of padding on
// top of the media, on the RTX stream of one of its video tracks, and
// raises the estimate the layer choice uses to what a cluster showed the
// link carries (probe.Controller decides when, how hard and what it
// showed). Padding-only RTX packets are what a browser sends to probe:
// a receiver gives them a transport-cc report like any packet and
// otherwise drops them, so they never reach a decoder or a jitter
// buffer, and they never change the media stream's numbering.
//
// The padding goes through the subscriber's send queue like the media
// (so the RTX stream's sequence numbers stay the writer's alone) and
// through pion's interceptors, which give it a transport-wide sequence
// number: probeTap notes those numbers and the feedback about them for
// the probe.Recorder.
//
// Transport-cc feedback names the SSRC of the last packet the receiver
// got before it wrote the feedback (pion's receiver and libwebrtc's both
// do): right after a probe packet, the RTX SSRC. pion (v4.2.26) reads no
// RTX SSRC's RTCP; rtxFeedback (rtxfeedback.go) does, and passes it
// through probeTap and GCC like the media senders' RTCP. A cluster whose
// feedback still does not all arrive (lost on the way) is judged with
// what did (Settle), or not at all (probe.OutcomeNoData).

const (
	// probePadSize is the padding of one probe packet: RTP padding is at
	// most 255 bytes, the length being one byte.
	probePadSize = 255
	// probePaceInterval spreads a cluster's padding so that it arrives
	// as a rate, not a burst; probeJudgeInterval is how often a sent
	// cluster's feedback is looked at.
	probePaceInterval  = 5 * time.Millisecond
	probeJudgeInterval = 50 * time.Millisecond
	// probeMaxOwed caps the padding one pacing step catches up on after
	// the goroutine was late, so a stall does not turn into a burst.
	probeMaxOwed = 8 * probePadSize
	// probeWantedHeadroom: the layer choice steps up only with a margin
	// over the layer's bitrate (simulcast.DefaultUpMargin), so a probe
	// aims that much above what the tiles want.
	probeWantedHeadroom = 1.25
	// rtpOverhead is added to each packet's payload when the media rate
	// is measured from the payload counts: RTP header, SRTP tag, UDP/IP.
	rtpOverhead = 12 + 10 + 28
)

// prober is one subscriber's probing state, owned by its selectLoop.
type prober struct {
	p   *Peer
	ctl *probe.Controller
	rec *probe.Recorder

	// While a cluster is in flight: the ticker pacing its padding (then
	// polling its feedback), the track carrying it, the padding owed.
	ticker  *time.Ticker
	d       *downTrack
	lastPad time.Time
	owed    float64
	pollAt  time.Time // next abort check while sending
	in      probe.Input
	padD    *downTrack // where padding can go, as of the last round

	// The media rate sent, measured over about a second.
	sentBytes uint64
	sentAt    time.Time
	sending   int
	sent      sentFloor
	// used is what the layers chosen at the last round cost (bit/s);
	// limited, whether that round held any track below its wanted layer
	// or frame rate (simulcast.Totals).
	used    int
	limited bool
	// raisedAt is when the layer choice last switched a layer up.
	raisedAt time.Time
}

func newProber(p *Peer, rec *probe.Recorder) *prober {
	pr := &prober{p: p, ctl: probe.NewController(probe.Config{Max: bweMaxBitrate}), rec: rec}
	pr.sent.quietOnly = p.s.cfg.BandwidthEstimator != "pion"
	return pr
}

// tick is the channel of the cluster's ticker, nil when none runs.
func (pr *prober) tick() <-chan time.Time {
	if pr == nil || pr.ticker == nil {
		return nil
	}
	return pr.ticker.C
}

func (pr *prober) stop() {
	if pr != nil && pr.ticker != nil {
		pr.ticker.Stop()
		pr.ticker = nil
	}
}

// measure updates the media rate sent to the subscriber from the
// downTracks' counts.
func (pr *prober) measure(downs []*downTrack, now time.Time) {
	var total uint64
	for _, d := range downs {
		total += d.tx.bytes.Load() + d.tx.rtxBytes.Load() +
			rtpOverhead*(d.tx.packets.Load()+d.tx.rtxPackets.Load())
	}
	if pr.sentAt.IsZero() {
		pr.sentAt, pr.sentBytes = now, total
		return
	}
	if el := now.Sub(pr.sentAt); el >= 900*time.Millisecond {
		pr.sending = int(float64(total-pr.sentBytes) * 8 / el.Seconds())
		pr.sentAt, pr.sentBytes = now, total
	}
}

// congested reads the estimator's view: delay overuse (or the decrease
// that follows it) or more than 10% loss. It also returns the average
// loss.
func congested(bwe cc.BandwidthEstimator) (bool, float64) {
	st := bwe.GetStats()
	loss, _ := st["averageLoss"].(float64)
	if u, _ := st["usage"].(string); u == "overuse" {
		return true, loss
	}
	if s, _ := st["state"].(string); s == "decrease" {
		return true, loss
	}
	return loss > 0.1, loss
}

// The sent floor (see sentFloor).
const (
	// sentFloorMaxLoss: with this much loss or more the link is full,
	// and GCC's estimate, from what was received, is the one to use.
	sentFloorMaxLoss = 0.02
	// sentFloorBeta is GCC's own decrease: to this fraction of the rate
	// that got through.
	sentFloorBeta = 0.85
	// sentFloorStep: while the congestion lasts, the floor comes down
	// again (from what is sent by then) at most this often.
	sentFloorStep = time.Second
)

// sentFloor keeps a subscriber's estimate from collapsing when GCC
// decreases on delay alone. Parley's estimator (sfu/internal/sendside)
// groups a stalled receiver's burst of arrivals with the packets before
// them (no queue read into them), does not cut while what was sent
// arrives as fast as it left, and counts a probe's padding in what was
// acknowledged; but it still cuts to 0.85 of what was acknowledged, and
// at a call's start that is the little media sent yet: a subscriber's
// estimate fell from 3 Mbit/s to 100 kbit/s a second into the call,
// below the media it then received without loss, and its cameras ran at
// 4 fps for 10 s (lab scenario 2, 2026-12-07 02:34:15; no congestion
// was signalled: the bound on the rate, 1.5 times the media
// acknowledged, took the initial 3 Mbit/s down while the media was still
// starting). So the floor holds for Parley's estimator too, but only
// where no congestion shows (quietOnly): on a signal the estimator's cut
// stands at once. A hold of a second, or of 0.3 s, on the signal let a
// 1.15 Mbit/s call overflow a link stepped down to 1 Mbit/s before the
// layers came down, and both cameras froze for 0.4-0.8 s (the same
// scenario, 01:56 and 02:38).
//
// pion's GCC decreases to 0.85 times the rate it measured acknowledged,
// and it measures that from the transport-cc feedback that reaches it.
// Until rtxFeedback read the feedback that names an RTX SSRC (see the
// note at the top), it counted a fraction of what arrived after a probe: in the lab a subscriber receiving 850
// kbit/s without loss on a link with no cap got an estimate of 100
// kbit/s, and both its cameras fell from 640x360 and more to 320x180 at
// a quarter frame rate.
//
// With all the feedback read, GCC still signals overuse on links with
// no queue at all: a receiving browser short of CPU stamps its packets'
// arrivals late, in bursts, which reads as a queue. Each such signal
// took the estimate to 0.85 of what was received, below what the
// chosen layers cost, so the layer choice stepped down for the two
// seconds GCC took to climb back (in the lab run of 2026-12-05 13:35 an
// uncapped subscriber lost one of its two 1280x720 cameras twice a
// minute so). And just after a step up the rate received over the last
// second is still the lower layers': 0.85 of it took a subscriber from
// 1.70 Mbit/s to 233 kbit/s half a second after its switch (11:01).
//
// So when GCC signals congestion, or falls below what is sent, with
// under sentFloorMaxLoss of loss, the floor first holds the estimate at
// what is sent: the media of the last second, or what the layers the
// estimate chose last round cost as measured then, if that is more (the
// layers' measured rates swing by a quarter from one second to the
// next, so a hold at last round's cost alone still let a 1280x720
// camera step down; just after a step up the last second is still the
// lower layers'). If the congestion is still there sentFloorStep later, it
// decreases as GCC would with a correct rate, to sentFloorBeta times
// the media sent over the last second, and again every sentFloorStep
// while the congestion lasts (each time from the rate sent by then,
// which the layer choice has lowered). It goes once there is loss (a
// full link drops: the lab's 200 ms queues do within a second of an
// overshoot) or GCC is back up to it. A real queue thus costs a second
// more before the layers step down, with the first loss ending it
// sooner.
type sentFloor struct {
	rate int
	at   time.Time
	// quietOnly: no floor while congestion is signalled (Parley's
	// estimator); the hold is for a fall with no signal.
	quietOnly bool
}

// update returns the floor at now, given GCC's estimate, the media rate
// sent, what the chosen layers cost (0 if unknown), GCC's average loss
// and its congestion signal.
func (f *sentFloor) update(now time.Time, gcc, sending, used int, loss float64, congested bool) int {
	if loss >= sentFloorMaxLoss || gcc >= f.rate {
		f.rate = 0
	}
	if loss >= sentFloorMaxLoss {
		return f.rate
	}
	if congested && f.quietOnly {
		f.rate = 0
		return 0
	}
	if f.rate == 0 {
		// The first signal: hold. GCC falling below what the chosen
		// layers cost with this little loss is one too (its loss-based
		// rate cuts only above 10%): its overuse state lasts one update,
		// and sampled twice a second it was missed, so an uncapped
		// subscriber's estimate fell from 1.45 to 1.13 Mbit/s with no
		// signal seen and a 1280x720 camera stepped down for 2-3 s
		// (lab scenario 1, 2026-12-05 19:00).
		r := max(sending, used)
		if !congested && gcc >= r {
			return 0
		}
		if r > gcc {
			f.rate, f.at = r, now
		}
		return f.rate
	}
	// Lower only while GCC signals congestion: a GCC that stays low
	// without signalling (feedback it cannot read, say) would otherwise
	// walk the layers down a step a second.
	if congested && now.Sub(f.at) >= sentFloorStep {
		if r := int(sentFloorBeta * float64(sending)); r > gcc {
			f.rate, f.at = r, now
		}
	}
	return f.rate
}

// floored is the estimator's estimate gcc, or the sent floor if that is
// higher.
func (pr *prober) floored(now time.Time, gcc int, loss float64, cong bool) int {
	return max(gcc, pr.sent.update(now, gcc, pr.sending, pr.used, loss, cong))
}

// round runs at each layer selection, before the layer choice: it
// judges the cluster in flight and returns the estimate for the layer
// choice (selected, after it, may start a cluster).
// wanted is what the tiles wanted at the last round (bit/s); cong and
// loss are the estimator's state (congested).
func (pr *prober) round(downs []*downTrack, gcc, wanted int, cong bool, loss float64, now time.Time) int {
	pr.measure(downs, now)
	// The sent floor stands in for GCC's estimate, for the probes too:
	// they aim above it, and the probed floor goes once it is reached.
	gcc = pr.floored(now, gcc, loss, cong)
	pr.in = probe.Input{Estimate: gcc, Wanted: int(probeWantedHeadroom * float64(wanted)),
		Sending: pr.sending, Congested: cong}
	pr.judge(now)
	pr.padD = padTrack(downs)
	// The state only: a cluster may start after the layer choice
	// (selected), which may switch a layer up.
	in := pr.in
	in.Wanted = 0
	pr.feed(now, in)
	return pr.ctl.Estimate(pr.in)
}

// selected runs after each round's layer choice: raised says whether it
// switched a layer up. It may start a cluster.
func (pr *prober) selected(now time.Time, raised bool) {
	if raised {
		pr.raisedAt = now
	}
	pr.update(now)
}

// probeAfterRaise: no cluster starts within this long of a switch up to
// a higher layer, whose key frame is a burst several times the layer's
// rate. A cluster started in the same round as two such switches (the
// estimate had just risen) overflowed a 1 Mbit/s link's queue and the
// cameras froze for 0.4-0.7 s (lab scenario 2, 2026-12-07 02:19:53 and
// 02:20:01).
const probeAfterRaise = time.Second

// update passes the last state to the controller and starts the cluster
// it asks for.
func (pr *prober) update(now time.Time) {
	in := pr.in
	if pr.padD == nil || !pr.limited || (!pr.raisedAt.IsZero() && now.Sub(pr.raisedAt) < probeAfterRaise) {
		// Nowhere to send padding, nothing a higher estimate would
		// raise (a 1 x 50 load run of single-layer video probed every
		// time its estimate dipped under the track's rate: 7% more
		// packets, for no layer to switch to), or a key frame on its
		// way: no probing.
		in.Wanted = 0
	}
	if cl := pr.feed(now, in); cl != nil {
		pr.start(*cl, pr.padD, now)
	}
}

// feed is Controller.Update, noting when the probed floor goes.
func (pr *prober) feed(now time.Time, in probe.Input) *probe.Cluster {
	floor := pr.ctl.Floor()
	cl := pr.ctl.Update(now, in)
	if floor != 0 && pr.ctl.Floor() == 0 {
		pr.p.log.Debug("probed floor dropped", "floor", floor, "estimate", in.Estimate, "congested", in.Congested)
	}
	return cl
}

// padTrack is a video downTrack with an RTX stream that is forwarding,
// nil if there is none. A simulcast track the subscriber receives no
// layer of (a hidden tile) is not forwarding: padding on it would show
// the client packets of a video it asked not to get.
func padTrack(downs []*downTrack) *downTrack {
	for _, d := range downs {
		if b := d.bind.Load(); b != nil && b.rtxSSRC != 0 && d.src.video && !d.src.muted.Load() &&
			(d.sw == nil || d.sw.Current() != simulcast.None) {
			return d
		}
	}
	return nil
}

func (pr *prober) start(cl probe.Cluster, d *downTrack, now time.Time) {
	pr.rec.StartCluster(cl.ID)
	pr.d, pr.lastPad, pr.owed, pr.pollAt = d, now, 0, now.Add(probeJudgeInterval)
	pr.p.probing.Store(true)
	pr.ticker = time.NewTicker(probePaceInterval)
	pr.p.log.Debug("probe cluster", "id", cl.ID, "target", cl.Target, "padding", cl.PadRate,
		"estimate", pr.in.Estimate, "sending", pr.in.Sending)
}

// step runs at each tick of the cluster's ticker: it queues the padding
// due since the last step while the cluster is sent, then polls for
// its judgement.
func (pr *prober) step(now time.Time) {
	if !pr.ctl.Probing() {
		pr.stop()
		return
	}
	if !now.Before(pr.pollAt) {
		// Abort on congestion as soon as it shows.
		pr.pollAt = now.Add(probeJudgeInterval)
		in := pr.in
		cong, loss := congested(pr.p.bwe)
		gcc := pr.p.bwe.GetTargetBitrate()
		in.Estimate, in.Congested = pr.floored(now, gcc, loss, cong), cong
		pr.feed(now, in) // no cluster starts while one is in flight
	}
	if pr.ctl.Sending(now) {
		pr.pad(now)
		return
	}
	if pr.judge(now) {
		// The next step up, if any, starts at once.
		pr.update(now)
		return
	}
	pr.ticker.Reset(probeJudgeInterval) // sent: now only waiting for feedback
}

// pad queues the padding owed at now. It leaves the subscriber's queue
// at least half free for the media: padding never pushes a media packet
// out.
func (pr *prober) pad(now time.Time) {
	cl := pr.ctl.Current()
	pr.owed = min(pr.owed+float64(cl.PadRate)/8*now.Sub(pr.lastPad).Seconds(), probeMaxOwed)
	pr.lastPad = now
	q := pr.p.queue
	for pr.owed >= probePadSize && len(q.ch) < cap(q.ch)/2 {
		if !q.push(outPacket{d: pr.d, pad: probePadSize}) {
			break
		}
		pr.owed -= probePadSize + rtpHeaderLen
	}
}

// probedEstimator is a bandwidth estimator that takes a probe's result
// (sendside.Estimator; pion's GCC does not).
type probedEstimator interface{ Probed(bps int) }

// judge asks the controller about the cluster in flight; it reports
// whether the cluster is over.
func (pr *prober) judge(now time.Time) bool {
	cl := pr.ctl.Current()
	if cl.ID == 0 {
		return true
	}
	res := pr.rec.Result(cl.ID)
	floor := pr.ctl.Floor()
	o := pr.ctl.Judge(now, pr.in, res)
	if o == probe.OutcomeNone {
		return false
	}
	pr.p.s.m.probes[o].Inc()
	if pr.ctl.Floor() > floor {
		// An estimator that takes a probe's word (Parley's) gets what
		// the layer choice now spends of the floor.
		if pe, ok := pr.p.bwe.(probedEstimator); ok {
			pe.Probed(pr.ctl.Estimate(pr.in))
		}
	}
	pr.p.log.Debug("probe result", "id", cl.ID, "outcome", o.String(), "target", cl.Target,
		"sent", res.Sent, "lost", res.Lost, "send_rate", res.SendRate, "recv_rate", res.RecvRate,
		"floor", pr.ctl.Floor())
	pr.p.probing.Store(false)
	pr.stop()
	pr.d = nil
	// The floor it leaves (higher after a success, none after
	// congestion) is for the layer choice now, not at its next tick.
	pr.p.wakeSelect()
	return true
}

// sendPadding writes one padding-only packet on d's RTX stream, numbered
// in it, and returns the bytes written. It is not counted as a
// retransmission.
func (q *sendQueue) sendPadding(p outPacket, hdr *rtp.Header) int {
	d := p.d
	b := d.bind.Load()
	if b == nil || b.rtxSSRC == 0 {
		return 0
	}
	w := b.writer
	if tw, ok := w.(*txWriter); ok {
		w = tw.TrackLocalWriter
	}
	d.rtxSeq++
	hdr.Version, hdr.Padding, hdr.PaddingSize, hdr.Marker = 2, true, p.pad, false
	hdr.SSRC, hdr.PayloadType, hdr.SequenceNumber = b.rtxSSRC, b.rtxPT, d.rtxSeq
	// The receiver drops a padding-only RTX packet before anything reads
	// its timestamp.
	hdr.Timestamp = 0
	hdr.CSRC = hdr.CSRC[:0]
	hdr.Extension = false
	hdr.Extensions = hdr.Extensions[:0]
	if _, err := w.WriteRTP(hdr, nil); err != nil {
		return 0
	}
	q.m.probeBytes.Add(float64(rtpHeaderLen + int(p.pad)))
	return rtpHeaderLen + int(p.pad)
}

// probeTapFactory builds the interceptor that shows a subscriber
// connection's probe packets and transport-cc feedback to its
// probe.Recorder. It sits below the transport-wide sequence number
// writer, so it sees the number each packet got. For media packets it
// costs one test of the padding bit.
type probeTapFactory struct{ rec *probe.Recorder }

func (f probeTapFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &probeTap{rec: f.rec}, nil
}

type probeTap struct {
	interceptor.NoOp
	rec *probe.Recorder
}

func (t *probeTap) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 || info.SSRCRetransmission == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.Padding && len(payload) == 0 {
			if ext := h.GetExtension(id); len(ext) >= 2 {
				seq := uint16(ext[0])<<8 | uint16(ext[1])
				t.rec.Sent(seq, h.MarshalSize()+int(h.PaddingSize)+rtpOverhead-rtpHeaderLen, time.Now())
			}
		}
		return w.Write(h, payload, a)
	})
}

func (t *probeTap) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = make(interceptor.Attributes)
		}
		pkts, err := a.GetRTCPPackets(b[:n])
		if err != nil {
			return n, a, nil // not ours to judge: the reader above sees it too
		}
		for _, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				t.rec.Feedback(fb)
			}
		}
		return n, a, nil
	})
}
