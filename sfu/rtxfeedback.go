package sfu

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Feedback on RTX SSRCs. A receiver writes its transport-cc feedback
// under the SSRC of the last packet it got (pion's receiver and
// libwebrtc's both do), which after a retransmission or a probe packet
// is the subscriber's RTX SSRC. pion (v4.2.26) hands incoming SRTCP to
// the RTPSender of the SSRC it names, and none of a connection's
// senders reads an RTX SSRC: its undeclared-stream processor accepts
// that stream, logs "Incoming unhandled RTCP ssrc(N)" and never reads
// it, so that feedback reached neither GCC nor the probe recorder, and
// the more was retransmitted (under loss, while probing) the less the
// estimator heard.
//
// rtxFeedback reads those streams itself, with pion's public ORTC API:
// an RTPSender of a side API without interceptors, on the connection's
// own DTLS transport (whose SRTP sessions it shares), "sending" the RTX
// SSRC. Such a sender writes nothing (its track writes nothing) but its
// Read opens and reads the SRTCP read stream of that SSRC. What it reads
// goes through the connection's own GCC and probeTap instances (captured
// as the subscriber API built them, rtcpTaps), bound as RTCP readers
// once more, as pion binds them for each media sender.
//
// The reader starts when the downTrack is bound, and its first Read
// opens the stream at once, or when SRTP starts if the connection is not
// up yet: before anything can be sent on the RTX SSRC, so the stream is
// normally ours before any feedback naming it arrives. If pion's undeclared processor got the stream first, srtp
// hands the same stream to both (OpenReadStream returns the existing
// one); the processor never reads it, so it is read here all the same,
// starting with what srtp buffered meanwhile (at most 100 KB of it),
// which GCC and the probes take as feedback that arrived late
// (TestRTXFeedbackReadAfterUnhandled). After a reader stops, RTCP that
// still names its SSRC goes to the processor again, which logs it.

// rtcpTaps holds the interceptors of one subscriber connection that
// must see the feedback on RTX SSRCs, in the order the registry built
// them (that of its chain). The subscriber API builds one connection,
// so each factory builds one instance.
type rtcpTaps struct {
	mu  sync.Mutex
	all []interceptor.Interceptor
}

func (t *rtcpTaps) add(i interceptor.Interceptor) {
	t.mu.Lock()
	t.all = append(t.all, i)
	t.mu.Unlock()
}

// bind chains r through the captured interceptors, as pion's chain does
// (the first built is the innermost reader).
func (t *rtcpTaps) bind(r interceptor.RTCPReader) interceptor.RTCPReader {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, i := range t.all {
		r = i.BindRTCPReader(r)
	}
	return r
}

// tapFactory notes each interceptor its factory builds in taps.
type tapFactory struct {
	interceptor.Factory
	taps *rtcpTaps
}

func (f tapFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.Factory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	f.taps.add(i)
	return i, nil
}

// rtxFeedback reads the RTCP on the RTX SSRCs of one subscriber
// connection. Its readers are opened by downTrack.Bind and stopped by
// Unbind; close stops the rest and refuses new ones.
type rtxFeedback struct {
	api  *webrtc.API           // no interceptors: the side senders only read
	dtls *webrtc.DTLSTransport // the connection's
	taps *rtcpTaps
	log  *slog.Logger

	// feedback counts the transport-cc reports read on RTX SSRCs and
	// accepted by the estimator.
	feedback atomic.Uint64

	mu      sync.Mutex
	closed  bool
	readers map[uint32]*rtxReader
}

type rtxReader struct {
	sender *webrtc.RTPSender
	done   chan struct{}
}

func newRTXFeedback(pc *webrtc.PeerConnection, taps *rtcpTaps, se webrtc.SettingEngine, log *slog.Logger) *rtxFeedback {
	// An empty media engine and registry: NewAPI would otherwise add the
	// default codecs and interceptors.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}), webrtc.WithSettingEngine(se))
	return &rtxFeedback{api: api, dtls: pc.SCTP().Transport(), taps: taps, log: log,
		readers: map[uint32]*rtxReader{}}
}

// open starts reading the RTCP of the RTX SSRC ssrc, unless it is read
// already or f is closed.
func (f *rtxFeedback) open(ssrc uint32) {
	if f == nil || ssrc == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.readers[ssrc] != nil {
		return
	}
	sender, err := f.api.NewRTPSender(rtxReadTrack{}, f.dtls)
	if err == nil {
		err = sender.Send(webrtc.RTPSendParameters{Encodings: []webrtc.RTPEncodingParameters{
			{RTPCodingParameters: webrtc.RTPCodingParameters{SSRC: webrtc.SSRC(ssrc)}}}})
	}
	if err != nil {
		f.log.Warn("rtx feedback reader", "ssrc", ssrc, "err", err)
		if sender != nil {
			_ = sender.Stop()
		}
		return
	}
	r := &rtxReader{sender: sender, done: make(chan struct{})}
	f.readers[ssrc] = r
	go f.run(r)
}

// run reads one RTX SSRC's RTCP through the taps until its sender
// stops. Each loop consumes one packet from the stream; what the chain
// does with it is the interceptors' business.
func (f *rtxFeedback) run(r *rtxReader) {
	defer close(r.done)
	var readErr error
	base := interceptor.RTCPReaderFunc(func(b []byte, _ interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.sender.Read(b)
		readErr = err
		return n, a, err
	})
	chain := f.taps.bind(base)
	buf := make([]byte, 1500)
	for {
		n, a, err := chain.Read(buf, nil)
		if readErr != nil && !errors.Is(readErr, io.ErrShortBuffer) {
			return // the stream is closed (or never opened: the connection closed first)
		}
		if err != nil || a == nil {
			continue // a packet too long, or one the estimator or a parser refused
		}
		pkts, err := a.GetRTCPPackets(buf[:n]) // parsed by the chain already
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.TransportLayerCC); ok {
				f.feedback.Add(1)
			}
		}
	}
}

// stop ends the reader of ssrc, if any, and waits for it.
func (f *rtxFeedback) stop(ssrc uint32) {
	if f == nil || ssrc == 0 {
		return
	}
	f.mu.Lock()
	r := f.readers[ssrc]
	delete(f.readers, ssrc)
	f.mu.Unlock()
	if r != nil {
		r.end()
	}
}

// close ends every reader and waits for them; no reader opens after.
func (f *rtxFeedback) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.closed = true
	readers := f.readers
	f.readers = nil
	f.mu.Unlock()
	for _, r := range readers {
		r.end()
	}
}

// end stops the sender, which closes its SRTCP read stream (or makes its
// pending first Read give up), and waits for the reading goroutine.
func (r *rtxReader) end() {
	_ = r.sender.Stop()
	<-r.done
}

// rtxReadTrack is the side sender's track: it takes any codec and never
// writes.
type rtxReadTrack struct{}

func (rtxReadTrack) Bind(webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeRTX, ClockRate: 90000}}, nil
}

func (rtxReadTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (rtxReadTrack) ID() string                            { return "rtx-feedback" }
func (rtxReadTrack) RID() string                           { return "" }
func (rtxReadTrack) StreamID() string                      { return "rtx-feedback" }
func (rtxReadTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeVideo }
