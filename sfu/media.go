package sfu

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/logging"

	"github.com/parleyhq/parley/sfu/internal/audiolevel"
	"github.com/parleyhq/parley/sfu/internal/probe"
	"github.com/parleyhq/parley/sfu/internal/sendside"
)

// Payload types follow what Chrome offers so SDP munging is never needed
// and the answers look familiar in logs.
var videoCodecs = []webrtc.RTPCodecParameters{ //nolint:gochecknoglobals // read-only table
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000,
		SDPFmtpLine: "profile-id=0"}, PayloadType: 98},
	// H.264 constrained baseline (42e01f) and baseline (42001f), both with
	// packetization-mode=1 (FU-A), decodable by every browser. High and
	// Main profiles are left out: a publisher could pick one that another
	// subscriber's browser does not decode, and the SFU does not transcode.
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 125},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}, PayloadType: 102},
}

// rtxPT is the payload type of each video codec's RFC 4588
// retransmission format (rtx with apt=<codec's payload type>), the
// numbers Chrome uses where ours match its.
var rtxPT = map[webrtc.PayloadType]webrtc.PayloadType{96: 97, 98: 99, 125: 107, 102: 103} //nolint:gochecknoglobals // read-only table

// Opus asks for in-band FEC (a low-bitrate copy of the previous frame)
// and DTX (a few bytes per 400 ms of silence instead of a frame every
// 20 ms).
var audioCodecs = []webrtc.RTPCodecParameters{ //nolint:gochecknoglobals // read-only table
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1;usedtx=1"}, PayloadType: opusPT},
}

// MimeTypeRED is RFC 2198 redundant audio, which pion has no constant for.
const MimeTypeRED = "audio/red"

const (
	opusPT = 111
	redPT  = 63
)

// redCodec is RED over Opus as Chromium offers it: the fmtp names the
// payload type of the primary and the redundant blocks (both Opus).
var redCodec = webrtc.RTPCodecParameters{ //nolint:gochecknoglobals // read-only
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: MimeTypeRED, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "111/111"}, PayloadType: redPT,
}

func isRED(mime string) bool { return strings.EqualFold(mime, MimeTypeRED) }

// newMediaEngine registers our codecs explicitly, each video codec with
// its rtx format. With rtx negotiated, retransmissions travel on a stream
// of their own (RFC 4588) in both directions: a browser counts them as
// retransmitted, not as media, and pads its bandwidth probes on that
// stream instead of the media one. A peer that does not negotiate rtx
// gets retransmissions on the media SSRC, as before.
// withTransportCC adds transport-wide congestion control feedback, used on
// the publisher side so the browser's send-side bandwidth estimator works.
// withRED adds audio/red after Opus: a publisher sends RED only if it puts
// RED first in its offer (the web client does), and pion's answer keeps
// the offer's order.
func newMediaEngine(withTransportCC, withRED, withRTX bool) (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	var audioFB []webrtc.RTCPFeedback
	if withTransportCC {
		videoFB = append(videoFB, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
		audioFB = append(audioFB, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
	}
	for _, c := range videoCodecs {
		c.RTCPFeedback = videoFB
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("register %s: %w", c.MimeType, err)
		}
		if !withRTX {
			continue
		}
		pt, ok := rtxPT[c.PayloadType]
		if !ok {
			return nil, fmt.Errorf("no rtx payload type for %s", c.MimeType)
		}
		rtx := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX,
			ClockRate: c.ClockRate, SDPFmtpLine: fmt.Sprintf("apt=%d", c.PayloadType)}, PayloadType: pt}
		if err := m.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("register rtx for %s: %w", c.MimeType, err)
		}
	}
	audio := audioCodecs
	if withRED {
		audio = append(slices.Clip(audio), redCodec)
	}
	for _, c := range audio {
		c.RTCPFeedback = audioFB
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	return m, nil
}

// newPublisherAPI builds the API for one participant's publisher
// connection. It is per peer because the RTCP counter interceptor reports
// to that peer's tracks (interceptors are built per connection but only
// know an opaque connection id).
//
// Interceptors: receiver reports give the browser loss/jitter feedback,
// TWCC feeds its bandwidth estimator. Lost packets are NACKed by the
// peer's own generator (nackgen, fed from the read loops), not pion's:
// pion unwraps the publisher's RTX stream above its generator
// interceptor, which never sees a repair arrive and would NACK it until
// it leaves its window.
// There is deliberately no NACK responder anywhere: the
// publisher connection sends no media, and on subscriber connections
// NACKs are answered from the shared packet cache by the SFU itself;
// running pion's responder there too would retransmit twice.
func (s *SFU) newPublisherAPI(onRTCPOut func([]rtcp.Packet), follow *nominationFollower) (*webrtc.API, error) {
	me, err := newMediaEngine(true, s.cfg.AudioRED, true)
	if err != nil {
		return nil, err
	}
	// Audio levels (RFC 6464) for speaker detection, read from the header
	// without decoding.
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audiolevel.URI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("audio level extension: %w", err)
	}
	reg := &interceptor.Registry{}
	// Sees every RTCP packet the connection sends, the NACKs of the
	// peer's nackgen.Generator (written with WriteRTCP) among them.
	reg.Add(&rtcpCounterFactory{onWrite: onRTCPOut})
	rr, err := report.NewReceiverInterceptor(report.ReceiverInterval(s.cfg.ReportInterval),
		report.WithReceiverLoggerFactory(s.pionLog))
	if err != nil {
		return nil, fmt.Errorf("receiver reports: %w", err)
	}
	reg.Add(rr)
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return nil, fmt.Errorf("twcc: %w", err)
	}
	// mid and rid header extensions: how pion tells a simulcast
	// publisher's layers apart (their SSRCs are not in the offer).
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, fmt.Errorf("simulcast extensions: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(follow.settings(*s.settings))), nil
}

// newSubscriberAPI builds the API of one participant's subscriber
// connection. It is per peer because the congestion controller hands its
// bandwidth estimator to onBWE, which must know whose it is (interceptors
// only see an opaque connection id).
//
// Interceptors: sender reports (browsers need them for lip sync and
// stats); the transport-wide sequence number on every packet and the
// send-side estimator (pion's GCC) that reads the browser's transport-cc
// feedback. GCC runs without a pacer: the layer choice keeps the rate
// under the estimate, and a pacer would add a copy and a queue per packet.
//
// probes (set with bandwidth estimation) hears of the bandwidth probes'
// packets and feedback (probe.go). taps (likewise) receives the
// estimator and probeTap instances, which the connection's rtxFeedback
// feeds the RTCP of its RTX SSRCs through (rtxfeedback.go).
func (s *SFU) newSubscriberAPI(onBWE func(cc.BandwidthEstimator), probes *probe.Recorder, taps *rtcpTaps,
	follow *nominationFollower,
) (*webrtc.API, error) {
	me, err := newMediaEngine(s.cfg.BandwidthEstimation, s.cfg.AudioRED, true)
	if err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor(report.SenderInterval(s.cfg.ReportInterval),
		report.WithSenderLoggerFactory(s.pionLog))
	if err != nil {
		return nil, fmt.Errorf("sender reports: %w", err)
	}
	reg.Add(mediaOnlyFactory{sr})
	if !s.cfg.BandwidthEstimation {
		return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
			webrtc.WithSettingEngine(follow.settings(*s.settings))), nil
	}
	ctl, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		if s.cfg.BandwidthEstimator != "pion" {
			return sendside.New(sendside.Config{Initial: bweInitialBitrate, Min: bweMinBitrate, Max: bweMaxBitrate}), nil
		}
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(bweInitialBitrate),
			gcc.SendSideBWEMinBitrate(bweMinBitrate), gcc.SendSideBWEMaxBitrate(bweMaxBitrate),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
			// GCC logs its state at Info on every feedback report (a few
			// per second per subscriber): one step down, Debug.
			gcc.WithLoggerFactory(logging.PionFactory(s.log, logging.PionOptions{Demote: true})))
	})
	if err != nil {
		return nil, fmt.Errorf("congestion control: %w", err)
	}
	ctl.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { onBWE(e) })
	// Added before the estimator and the sequence number writer, so its
	// writer runs after them and sees each probe's number.
	reg.Add(tapFactory{probeTapFactory{probes}, taps})
	reg.Add(tapFactory{rtxStreamFactory{ctl}, taps})
	// Added after the estimator so its writer runs first: the estimator
	// records each packet under the transport-wide number set here.
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, reg); err != nil {
		return nil, fmt.Errorf("twcc: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(follow.settings(*s.settings))), nil
}

// mediaOnlyFactory wraps an interceptor so that it sees only the packets
// of a stream's media SSRC: retransmissions on the RTX SSRC, written
// through the same stream, go past it to the inner writer. The sender
// reports need this: RTX packets counted as media would inflate the
// packet and octet counts, and their sequence numbers (an unrelated
// series) would move the RTP timestamp the reports map to wall-clock
// time, which browsers use for lip sync.
type mediaOnlyFactory struct{ interceptor.Factory }

func (f mediaOnlyFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.Factory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &mediaOnly{Interceptor: i}, nil
}

type mediaOnly struct{ interceptor.Interceptor }

func (m *mediaOnly) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	inner := m.Interceptor.BindLocalStream(info, w)
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC != ssrc {
			return w.Write(h, payload, a)
		}
		return inner.Write(h, payload, a)
	})
}

// rtxStreamFactory wraps the congestion controller so that it also
// knows each stream's RTX SSRC: its pacer hands packets on by SSRC and
// fails those of an SSRC it was not given, and retransmissions must be
// in the estimate (they take bandwidth like media) anyway.
type rtxStreamFactory struct{ interceptor.Factory }

func (f rtxStreamFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.Factory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return &rtxStream{Interceptor: i}, nil
}

type rtxStream struct {
	interceptor.Interceptor
	attrs sync.Pool // of interceptor.Attributes, for withAttributes
}

func (r *rtxStream) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if info.SSRCRetransmission != 0 {
		rtx := *info
		rtx.SSRC = info.SSRCRetransmission
		// The returned writer is the same pacer for every stream.
		_ = r.Interceptor.BindLocalStream(&rtx, w)
	}
	return r.withAttributes(r.Interceptor.BindLocalStream(info, w))
}

// withAttributes hands w a pooled attribute map when the caller gives
// none (pion's track writer never does). pion's congestion controller
// otherwise makes a map for every packet it sends to note the TWCC
// extension's id in: an allocation per forwarded packet, about 2% of
// the server's CPU with its garbage in a 10 x 10 load run. The map is
// cleared before it goes back, so no stream sees another's entries.
func (r *rtxStream) withAttributes(w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if a != nil {
			return w.Write(h, payload, a)
		}
		a, _ = r.attrs.Get().(interceptor.Attributes)
		if a == nil {
			a = interceptor.Attributes{}
		}
		n, err := w.Write(h, payload, a)
		clear(a)
		r.attrs.Put(a)
		return n, err
	})
}

// rtcpCounterFactory builds an interceptor that shows every outgoing RTCP
// batch to a callback, which counts NACKs sent upstream per track.
type rtcpCounterFactory struct{ onWrite func([]rtcp.Packet) }

func (f *rtcpCounterFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &rtcpCounter{onWrite: f.onWrite}, nil
}

type rtcpCounter struct {
	interceptor.NoOp
	onWrite func([]rtcp.Packet)
}

func (c *rtcpCounter) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		c.onWrite(pkts)
		return w.Write(pkts, attrs)
	})
}
