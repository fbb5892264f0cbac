package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/signaling/proto"
)

// Options shapes one run.
type Options struct {
	WSURL       string // ws://host:port/ws
	Origin      string // http://host:port
	Room        string
	Publishers  int
	Subscribers int
	Duration    time.Duration // measured part of the run, after warm-up
	// Warmup is sent before the window opens; the window also waits
	// (up to flowingWait) until every subscriber receives every track,
	// so a subscription still being set up, whose forwarding then starts
	// at the next key frame, is not counted as loss.
	Warmup     time.Duration
	VideoPPS   int // video packets per second per publisher (~250 for 720p at 2.5 Mbit/s)
	VideoBytes int // video payload size
	AudioPPS   int // 50 for 20 ms Opus frames
	// Simulcast makes each publisher send its video as three layers
	// (rids q, h, f; VideoPPS and VideoBytes are the f layer's, q and h
	// send 1/8 and 1/4 of its packets), and subscriber i report a tile
	// size (video_view) that selects layer i mod 3 of every publisher.
	Simulcast bool
	// SimulcastWant, when set (q, h or f), makes every simulcast
	// subscriber ask for that layer instead of a third each: with f the
	// run forwards what a plain run does, which compares the cost per
	// forwarded packet of the two on the same work.
	SimulcastWant string
	// AdminKey and AdminSecret, when set, let a simulcast run ask the
	// admin API which layer each subscriber receives.
	AdminKey, AdminSecret string
	// Window, if set, is called as the measured window opens (true) and
	// closes (false), so a caller can read the server's counters over
	// the window alone, without the joins and warm-up.
	Window func(open bool)
	// Token returns a token for the participant (identity, may publish).
	Token  func(identity string, publish bool) (string, error)
	Logger *slog.Logger
}

// Report is what a run measured.
type Report struct {
	Publishers, Subscribers int
	Duration                time.Duration
	Sent                    uint64 // packets sent by publishers during the measured window
	Received                uint64 // packets received by subscribers during the window
	Expected                uint64 // Sent x subscribers per packet
	LossPercent             float64
	ForwardedPerSecond      float64
	DelayP50, DelayP99      time.Duration
	DelayMax                time.Duration
	JoinP50, JoinMax        time.Duration

	// Simulcast runs only.
	Simulcast bool
	Layers    []LayerReport
	// WrongLayer counts video packets, sent inside the window, that
	// reached a subscriber from a layer it did not ask for (not counted
	// as received).
	WrongLayer uint64
	// ReceiversChecked counts the (subscriber, video track) pairs the
	// admin API listed; ReceiversWrong those on another layer than asked.
	ReceiversChecked int
	ReceiversWrong   []string
	ReceiversError   string
}

// LayerReport is what the subscribers that asked for one layer got.
type LayerReport struct {
	RID                string
	Subscribers        int
	Expected, Received uint64 // audio and the layer's video
	LossPercent        float64
}

func (r Report) String() string {
	return fmt.Sprintf("publishers=%d subscribers=%d duration=%s sent=%d received=%d expected=%d loss=%.3f%% forwarded/s=%.0f delay p50=%s p99=%s max=%s join p50=%s max=%s",
		r.Publishers, r.Subscribers, r.Duration, r.Sent, r.Received, r.Expected, r.LossPercent, r.ForwardedPerSecond,
		r.DelayP50, r.DelayP99, r.DelayMax, r.JoinP50, r.JoinMax) + r.simulcastString()
}

func (r Report) simulcastString() string {
	if !r.Simulcast {
		return ""
	}
	var b strings.Builder
	for _, l := range r.Layers {
		fmt.Fprintf(&b, "\nlayer %s: subscribers=%d expected=%d received=%d loss=%.3f%%", l.RID, l.Subscribers, l.Expected, l.Received, l.LossPercent)
	}
	fmt.Fprintf(&b, "\nwrong-layer packets=%d", r.WrongLayer)
	switch {
	case r.ReceiversError != "":
		fmt.Fprintf(&b, "; admin API receivers: %s", r.ReceiversError)
	case r.ReceiversChecked > 0:
		fmt.Fprintf(&b, "; admin API receivers: %d checked, %d on another layer", r.ReceiversChecked, len(r.ReceiversWrong))
		for _, w := range r.ReceiversWrong[:min(5, len(r.ReceiversWrong))] {
			b.WriteString("\n  " + w)
		}
	}
	return b.String()
}

// recorder counts a packet when its send time falls inside the measured
// window, so packets sent during warm-up but arriving late are not
// counted against the window's sent packets.
type recorder struct {
	start, end atomic.Int64 // unix ns; end 0 = window still open
	received   atomic.Uint64
	flowing    atomic.Int64 // subscribers' tracks that have received a packet
	// Simulcast runs: received packets by the layer asked for, and video
	// from a layer nobody asked for.
	layerReceived [len(simLayers)]atomic.Uint64
	wrongLayer    atomic.Uint64
	mu            sync.Mutex
	delays        []time.Duration
}

func (r *recorder) inWindow(t time.Time) bool {
	ns := t.UnixNano()
	start, end := r.start.Load(), r.end.Load()
	return start != 0 && ns >= start && (end == 0 || ns < end)
}

func (r *recorder) record(sent time.Time) bool {
	d := time.Since(sent)
	if !r.inWindow(sent) {
		return false
	}
	r.received.Add(1)
	r.mu.Lock()
	if len(r.delays) < 2_000_000 {
		r.delays = append(r.delays, d)
	}
	r.mu.Unlock()
	return true
}

// Run joins the subscribers, then the publishers, sends for warm-up plus
// duration, and reports. Every goroutine and connection it starts is
// closed before it returns.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Publishers < 1 || o.Subscribers < 0 || o.Duration <= 0 || o.VideoPPS < 0 || o.AudioPPS < 0 {
		return Report{}, errors.New("loadtest: need publishers >= 1, subscribers >= 0, duration > 0")
	}
	if o.VideoBytes < layerOffset+1 {
		o.VideoBytes = 1100
	}
	rec := &recorder{}
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	var joins []time.Duration
	join := func(identity string, publish bool, onTrack func(string, string, *webrtc.TrackRemote, *webrtc.RTPReceiver)) (*client.Client, error) {
		tok, err := o.Token(identity, publish)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		c, err := client.Dial(ctx, client.Options{URL: o.WSURL, Origin: o.Origin, Token: tok, Logger: o.Logger, OnTrack: onTrack})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", identity, err)
		}
		joins = append(joins, time.Since(start))
		clients = append(clients, c)
		return c, nil
	}
	var readers, rtcpReaders sync.WaitGroup
	// Simulcast subscribers report their tile size once every subscriber
	// has joined (their clients exist by then); closed on every return.
	subs := make([]*client.Client, o.Subscribers)
	subsJoined := make(chan struct{})
	markJoined := sync.OnceFunc(func() { close(subsJoined) })
	defer markJoined()
	onTrackFor := func(sub int) func(string, string, *webrtc.TrackRemote, *webrtc.RTPReceiver) {
		return func(_, trackSID string, t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			off := opusProbeOffset
			video := t.Kind() == webrtc.RTPCodecTypeVideo
			if video {
				off = vp8ProbeOffset
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				want := o.subscriberLayer(sub)
				if o.Simulcast && video {
					<-subsJoined
					visible := true
					l := simLayers[want]
					if err := subs[sub].Notify(proto.TypeVideoView, proto.VideoViewBody{TrackSID: trackSID, Width: l.width, Height: l.height, Visible: &visible}); err != nil {
						o.Logger.Warn("loadtest: video_view", "error", err)
					}
				}
				flowing := false
				for {
					p, _, err := t.ReadRTP()
					if err != nil {
						return
					}
					sent, _, ok := readProbe(p.Payload, off)
					if ok && !flowing {
						flowing = true
						rec.flowing.Add(1)
					}
					switch {
					case !ok:
					case !o.Simulcast:
						rec.record(sent)
					case !video:
						if rec.record(sent) {
							rec.layerReceived[want].Add(1)
						}
					case len(p.Payload) > layerOffset && int(p.Payload[layerOffset]) == want:
						if rec.record(sent) {
							rec.layerReceived[want].Add(1)
						}
					case rec.inWindow(sent):
						rec.wrongLayer.Add(1)
					}
				}
			}()
		}
	}
	for i := range o.Subscribers {
		c, err := join(fmt.Sprintf("sub-%d", i), false, onTrackFor(i))
		if err != nil {
			return Report{}, err
		}
		subs[i] = c
	}
	markJoined()
	var pubs []*publisher
	var simPubs []*simPublisher
	for i := range o.Publishers {
		c, err := join(fmt.Sprintf("pub-%d", i), true, nil)
		if err != nil {
			return Report{}, err
		}
		if o.Simulcast {
			p, err := newSimPublisher(ctx, c, o, rec, &rtcpReaders)
			if err != nil {
				return Report{}, err
			}
			simPubs = append(simPubs, p)
			continue
		}
		p, err := newPublisher(ctx, c, o, rec)
		if err != nil {
			return Report{}, err
		}
		pubs = append(pubs, p)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var senders sync.WaitGroup
	for _, p := range pubs {
		senders.Add(1)
		go func() { defer senders.Done(); p.run(runCtx) }()
	}
	for _, p := range simPubs {
		senders.Go(func() { p.run(runCtx) })
	}
	sleep(ctx, o.Warmup)
	if !waitFlowing(ctx, rec, o.expectedTracks(), flowingWait) {
		o.Logger.Warn("loadtest: opening the window before every subscriber receives every track",
			"receiving", rec.flowing.Load(), "tracks", o.expectedTracks())
	}
	if o.Window != nil {
		o.Window(true)
	}
	start := time.Now()
	rec.start.Store(start.UnixNano())
	sleep(ctx, o.Duration)
	rec.end.Store(time.Now().UnixNano())
	if o.Window != nil {
		o.Window(false)
	}
	elapsed := time.Since(start)
	// Packets in flight when the window closes still count: stop sending,
	// give them a moment to arrive, then stop measuring.
	cancel()
	senders.Wait()
	sleep(ctx, 300*time.Millisecond)

	rep := Report{Publishers: o.Publishers, Subscribers: o.Subscribers, Duration: o.Duration}
	for _, p := range pubs {
		rep.Sent += p.sent.Load()
	}
	rep.Received = rec.received.Load()
	rep.Expected = rep.Sent * uint64(o.Subscribers)
	if o.Simulcast {
		simulcastReport(ctx, o, simPubs, rec, &rep)
	}
	if rep.Expected > 0 && rep.Received < rep.Expected {
		rep.LossPercent = 100 * float64(rep.Expected-rep.Received) / float64(rep.Expected)
	}
	rep.ForwardedPerSecond = float64(rep.Received) / elapsed.Seconds()
	rec.mu.Lock()
	d := slices.Clone(rec.delays)
	rec.mu.Unlock()
	rep.DelayP50, rep.DelayP99, rep.DelayMax = percentiles(d)
	rep.JoinP50, _, rep.JoinMax = percentiles(joins)
	for _, c := range clients {
		_ = c.Close()
	}
	clients = nil
	readers.Wait()
	rtcpReaders.Wait()
	return rep, ctx.Err()
}

// flowingWait bounds how long the window waits after the warm-up for
// subscriptions still being set up (under the race detector on a loaded
// machine that takes seconds).
const flowingWait = 15 * time.Second

// expectedTracks is how many tracks the subscribers receive in all.
func (o Options) expectedTracks() int64 {
	perPublisher := 0
	if o.VideoPPS > 0 {
		perPublisher++
	}
	if o.AudioPPS > 0 {
		perPublisher++
	}
	return int64(o.Subscribers * o.Publishers * perPublisher)
}

// waitFlowing waits until want subscriber tracks receive packets, for at
// most limit; it reports whether they do.
func waitFlowing(ctx context.Context, rec *recorder, want int64, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for rec.flowing.Load() < want {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		sleep(ctx, 20*time.Millisecond)
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func percentiles(d []time.Duration) (p50, p99, max time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)*50/100], d[min(len(d)-1, len(d)*99/100)], d[len(d)-1]
}

// publisher sends one synthetic VP8 video and one Opus audio track.
type publisher struct {
	o            Options
	rec          *recorder
	video, audio *webrtc.TrackLocalStaticRTP
	keyframe     atomic.Bool
	sent         atomic.Uint64 // packets sent inside the measured window
}

func newPublisher(ctx context.Context, c *client.Client, o Options, rec *recorder) (*publisher, error) {
	id := c.Joined.Participant.Identity
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video-"+id, "stream-"+id)
	if err != nil {
		return nil, err
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio-"+id, "stream-"+id)
	if err != nil {
		return nil, err
	}
	p := &publisher{o: o, rec: rec, video: video, audio: audio}
	if err := c.Publish(ctx, []webrtc.TrackLocal{video, audio}, []string{"camera", "microphone"}); err != nil {
		return nil, err
	}
	for _, s := range c.Publisher().GetSenders() {
		if s.Track() == video {
			go p.readRTCP(s)
		}
	}
	return p, nil
}

// readRTCP turns keyframe requests into the next frame being a keyframe,
// as an encoder would.
func (p *publisher) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframe.Store(true)
			}
		}
	}
}

// audioTicks ticks pps times a second, or never when pps is 0; stop
// releases the ticker.
func audioTicks(pps int) (c <-chan time.Time, stop func()) {
	if pps <= 0 {
		return make(<-chan time.Time), func() {}
	}
	t := time.NewTicker(time.Second / time.Duration(pps))
	return t.C, t.Stop
}

func (p *publisher) run(ctx context.Context) {
	const fps = 30
	perFrame := max(1, p.o.VideoPPS/fps)
	frameTick := time.NewTicker(time.Second / fps)
	defer frameTick.Stop()
	audioC, stopAudio := audioTicks(p.o.AudioPPS)
	defer stopAudio()
	vbuf := make([]byte, p.o.VideoBytes)
	abuf := make([]byte, 120)
	vseq, aseq := uint16(rand.Uint32()), uint16(rand.Uint32())
	vts, ats := rand.Uint32(), rand.Uint32()
	var frame, probe uint64
	p.keyframe.Store(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-frameTick.C:
			if p.o.VideoPPS == 0 {
				continue
			}
			key := p.keyframe.Swap(false) || frame%60 == 0
			frame++
			vts += 90000 / fps
			for i := range perFrame {
				vp8Payload(vbuf, i == 0, key)
				probe++
				now := time.Now()
				writeProbe(vbuf, vp8ProbeOffset, now, probe)
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: vseq, Timestamp: vts, Marker: i == perFrame-1}, Payload: vbuf}
				vseq++
				if err := p.video.WriteRTP(&pkt); err == nil && p.rec.inWindow(now) {
					p.sent.Add(1)
				}
			}
		case <-audioC:
			ats += 960
			probe++
			abuf[0] = 0x78
			now := time.Now()
			writeProbe(abuf, opusProbeOffset, now, probe)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: aseq, Timestamp: ats}, Payload: abuf}
			aseq++
			if err := p.audio.WriteRTP(&pkt); err == nil && p.rec.inWindow(now) {
				p.sent.Add(1)
			}
		}
	}
}
