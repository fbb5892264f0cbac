package sfu

import (
	"fmt"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
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

var audioCodecs = []webrtc.RTPCodecParameters{ //nolint:gochecknoglobals // read-only table
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
}

// newMediaEngine registers our codecs explicitly (no RTX: retransmissions
// go on the original SSRC, which browsers accept when RTX is not
// negotiated, and it keeps one SSRC per forwarded track).
// withTransportCC adds transport-wide congestion control feedback, used on
// the publisher side so the browser's send-side bandwidth estimator works.
func newMediaEngine(withTransportCC bool) (*webrtc.MediaEngine, error) {
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
	}
	for _, c := range audioCodecs {
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
// Interceptors: the NACK generator asks the publisher for lost packets
// (so the cache fills the gaps for every subscriber at once), receiver
// reports give the browser loss/jitter feedback, TWCC feeds its bandwidth
// estimator. There is deliberately no NACK responder anywhere: the
// publisher connection sends no media, and on subscriber connections
// NACKs are answered from the shared packet cache by the SFU itself;
// running pion's responder there too would retransmit twice.
func (s *SFU) newPublisherAPI(onRTCPOut func([]rtcp.Packet)) (*webrtc.API, error) {
	me, err := newMediaEngine(true)
	if err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	// Registered first so it wraps the raw writer that the NACK
	// generator (added after it) writes through: it sees every RTCP
	// packet the connection sends.
	reg.Add(&rtcpCounterFactory{onWrite: onRTCPOut})
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(s.pionLog))
	if err != nil {
		return nil, fmt.Errorf("nack generator: %w", err)
	}
	reg.Add(gen)
	rr, err := report.NewReceiverInterceptor(report.ReceiverInterval(s.cfg.ReportInterval),
		report.WithReceiverLoggerFactory(s.pionLog))
	if err != nil {
		return nil, fmt.Errorf("receiver reports: %w", err)
	}
	reg.Add(rr)
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return nil, fmt.Errorf("twcc: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(*s.settings)), nil
}

// newSubscriberAPI builds the API shared by all subscriber connections:
// sender reports only (browsers need them for lip sync and stats).
func (s *SFU) newSubscriberAPI() (*webrtc.API, error) {
	me, err := newMediaEngine(false)
	if err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor(report.SenderInterval(s.cfg.ReportInterval),
		report.WithSenderLoggerFactory(s.pionLog))
	if err != nil {
		return nil, fmt.Errorf("sender reports: %w", err)
	}
	reg.Add(sr)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(*s.settings)), nil
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
