// Package sfutest runs in-process WebRTC clients against Parley's SFU,
// as net/http/httptest runs servers: a pion endpoint that plays the
// browser's part, with a publisher and a subscriber PeerConnection and
// pion's default interceptors (NACK, RTCP reports), on a VNet or on the
// real network. Join's clients talk to an sfu.Peer directly; NewClient's
// talk through a Signal, for tests of a signaling protocol.
//
// Only tests import it.
package sfutest

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/internal/repairedrid"
	"github.com/parleyhq/parley/sfu"
)

// Options says where a client's PeerConnections live and what it keeps.
type Options struct {
	// Logger receives pion's logs (nil: discarded).
	Logger *slog.Logger
	// VNet puts the client on a new host of that virtual network.
	// Without it the client uses the real network: Interface only, or
	// else the loopback interface with loopback candidates, as Chromium
	// with --allow-loopback-in-peer-connection.
	VNet      *VNet
	Interface string
	// NetworkTypes restricts a loopback client (e.g. to ICE-TCP).
	NetworkTypes []webrtc.NetworkType
	// Manual: published tracks send nothing by themselves; the test
	// writes to Client.Track (benchmarks).
	Manual bool
	// CountOnly: the subscriber only counts packets, it keeps no
	// sequence numbers (benchmarks).
	CountOnly bool
	// KeepPackets is how many received packets each Track keeps.
	KeepPackets int
	// RED adds RFC 2198 redundant audio ("audio/red" over Opus, as
	// Chromium offers it) to the client's codecs; pion has none.
	RED bool
	// AudioLevel offers the RFC 6464 audio-level header extension, as
	// browsers do (the test writes the levels: Manual).
	AudioLevel bool
	// NoRTX leaves rtx (RFC 4588) out of the client's codecs, as a
	// client that neither sends nor receives retransmission streams:
	// retransmissions then travel on the media SSRC.
	NoRTX bool
	// Downlink, with VNet, queues what the client's host receives in
	// this discipline (e.g. a vnet.TBFQueue: a rate-capped downlink the
	// test can change).
	Downlink vnet.Discipline
	// LayerPayloads sets the payload size of each simulcast layer's
	// packets (one every 10 ms), lowest layer first, so that the layers'
	// bitrates differ as a browser's do; missing or 0: 120 bytes.
	LayerPayloads []int
}

// NewAPI builds a pion API as a client with these options would use it:
// default codecs and interceptors, no mDNS, and the network the options
// name. It returns the client's address ("" when Interface is set).
func NewAPI(t testing.TB, o Options) (*webrtc.API, string) {
	t.Helper()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	se := webrtc.SettingEngine{LoggerFactory: logging.PionFactory(log)}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var ip string
	switch {
	case o.VNet != nil:
		var n *vnet.Net
		n, ip = o.VNet.newHostWith(o.Downlink)
		se.SetNet(n)
	case o.Interface != "":
		se.SetInterfaceFilter(func(name string) bool { return name == o.Interface })
	default:
		ip = "127.0.0.1"
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		if o.NetworkTypes != nil {
			se.SetNetworkTypes(o.NetworkTypes)
		}
	}
	me := &webrtc.MediaEngine{}
	if o.NoRTX {
		registerCodecsWithoutRTX(t, me)
	} else if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if o.RED {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: REDCodec, PayloadType: 63},
			webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	if o.AudioLevel {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI},
			webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	reg := &interceptor.Registry{}
	// Retransmissions of a simulcast encoding carry repaired-rid, as a
	// browser's do (package repairedrid says why).
	reg.Add(repairedrid.Factory{})
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg)), ip
}

// registerCodecsWithoutRTX registers what the clients publish (VP8,
// H.264 constrained baseline, Opus) with pion's payload types and
// feedback, and no rtx.
func registerCodecsWithoutRTX(t testing.TB, me *webrtc.MediaEngine) {
	t.Helper()
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 112},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
}

// REDCodec is RED over Opus (payload type 111) as Chromium offers it.
var REDCodec = webrtc.RTPCodecCapability{MimeType: "audio/red", ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"} //nolint:gochecknoglobals // read-only

// AudioLevelURI is the RFC 6464 audio-level header extension.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Signal carries what a client sends the SFU besides media: answers to
// the subscriber connection's offers and both connections' candidates.
type Signal interface {
	Answer(webrtc.SessionDescription) error
	Candidate(sfu.Target, webrtc.ICECandidateInit) error
}

// Client is one participant. It is the sfu.PeerEvents of its peer: the
// SFU's offers and candidates go to SubscriberOffer and ICECandidate
// (a signaling test calls them for the messages it receives).
type Client struct {
	ID   string
	IP   string    // the client's address ("" with Options.Interface)
	Peer *sfu.Peer // Join's clients only
	// Sub is the subscriber connection (nil if the client cannot
	// subscribe). Pub is the publisher connection, made by the first
	// AddTrack; read it only from the test's goroutine.
	Sub, Pub *webrtc.PeerConnection
	// Track is the first track AddTrack made (benchmarks write to it).
	Track *webrtc.TrackLocalStaticRTP

	t   testing.TB
	o   Options
	api *webrtc.API
	sig Signal

	// SFU offers are applied in order on one goroutine.
	evq     chan func()
	done    chan struct{}
	closing atomic.Bool
	wg      sync.WaitGroup

	// Remote candidates wait here while their connection has no remote
	// description, or the one for an ICE restart is still to be applied.
	candMu  sync.Mutex
	pending map[sfu.Target][]webrtc.ICECandidateInit
	ufrag   map[sfu.Target]string // ICE ufrag of the newest remote description

	mu          sync.Mutex
	published   []sfu.TrackInfo
	unpublished []sfu.TrackInfo
	remote      map[string]*Track // by track id
	nacked      map[uint16]int
	speakers    []sfu.SpeakerUpdate
	active      []ActiveLayers
	quality     []map[string]sfu.Quality

	plis, sent, offers, glare atomic.Int64
	receiverReports           atomic.Int64 // RTCP RR about our published tracks
	senderReports             atomic.Int64 // RTCP SR on tracks we receive
	offerOut                  atomic.Bool  // an SFU offer is unanswered
	skipSeq                   atomic.Int32 // -1: none
}

// Track is what a client received on one remote track.
type Track struct {
	StreamID, ID string
	Kind         webrtc.RTPCodecType
	Codec        webrtc.RTPCodecParameters
	SSRC         webrtc.SSRC
	Count        int  // packets received
	Ended        bool // the SFU renegotiated the track away
	// RTX counts the packets that came on the track's RTX stream (pion
	// unwraps them: they are in Count, Seqs and Orig as well).
	RTX int
	// Seqs counts packets by their sequence number; Orig by the
	// publisher's sequence number that a Client writes into payload
	// bytes 2-3; RTXOrig is Orig for the packets that came on the RTX
	// stream only (the rest of Orig came on the media SSRC). All are
	// nil with Options.CountOnly.
	Seqs, Orig, RTXOrig map[uint16]int
	// Packets are the first Options.KeepPackets packets.
	Packets []*rtp.Packet
}

// Join joins room as participant id and returns the client, which is
// closed (with its peer) when the test ends. jo.Events is the client.
func Join(t testing.TB, s *sfu.SFU, room, id string, jo sfu.JoinOptions, o Options) *Client {
	t.Helper()
	c := newClient(t, id, o, jo.CanSubscribe)
	c.sig = peerSignal{c}
	jo.Events = c
	// Join may already send the first subscriber offer; the event loop
	// starts once c.Peer is set.
	var err error
	c.Peer, err = s.Join(room, id, jo)
	if err != nil {
		t.Fatal(err)
	}
	c.wg.Go(c.eventLoop)
	return c
}

// NewClient returns a client with a subscriber connection whose answers
// and candidates go to sig. It is closed when the test ends.
func NewClient(t testing.TB, id string, o Options, sig Signal) *Client {
	t.Helper()
	c := newClient(t, id, o, true)
	c.sig = sig
	c.wg.Go(c.eventLoop)
	return c
}

func newClient(t testing.TB, id string, o Options, subscribe bool) *Client {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api, ip := NewAPI(t, Options{Logger: log.With("client", id), VNet: o.VNet, Interface: o.Interface,
		NetworkTypes: o.NetworkTypes, RED: o.RED, AudioLevel: o.AudioLevel, NoRTX: o.NoRTX, Downlink: o.Downlink})
	c := &Client{
		ID: id, IP: ip, t: t, o: o, api: api,
		evq:     make(chan func(), 4096),
		done:    make(chan struct{}),
		pending: map[sfu.Target][]webrtc.ICECandidateInit{},
		ufrag:   map[sfu.Target]string{},
		remote:  map[string]*Track{},
		nacked:  map[uint16]int{},
	}
	c.skipSeq.Store(-1)
	t.Cleanup(c.close)
	if subscribe {
		var err error
		if c.Sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			t.Fatal(err)
		}
		c.Sub.OnICECandidate(c.localCandidate(sfu.Subscriber))
		c.Sub.OnTrack(c.onTrack)
	}
	return c
}

func (c *Client) close() {
	c.closing.Store(true)
	if c.Peer != nil {
		_ = c.Peer.Close()
	}
	for _, pc := range []*webrtc.PeerConnection{c.pc(sfu.Publisher), c.Sub} {
		if pc != nil {
			_ = pc.Close()
		}
	}
	close(c.done)
	c.wg.Wait()
}

// failed reports err unless the client or its peer is going away.
func (c *Client) failed(what string, err error) {
	if err == nil || c.closing.Load() || errors.Is(err, webrtc.ErrConnectionClosed) || errors.Is(err, sfu.ErrClosed) {
		return
	}
	c.t.Errorf("%s: %s: %v", c.ID, what, err)
}

func (c *Client) eventLoop() {
	for {
		select {
		case <-c.done:
			return
		case f := <-c.evq:
			f()
		}
	}
}

func (c *Client) post(f func()) {
	select {
	case c.evq <- f:
	default:
		c.t.Error("client event queue overflow")
	}
}

func (c *Client) pc(target sfu.Target) *webrtc.PeerConnection {
	if target == sfu.Subscriber {
		return c.Sub
	}
	c.candMu.Lock()
	defer c.candMu.Unlock()
	return c.Pub
}

func (c *Client) localCandidate(target sfu.Target) func(*webrtc.ICECandidate) {
	return func(ic *webrtc.ICECandidate) {
		if ic != nil {
			c.failed(target.String()+" candidate", c.sig.Candidate(target, ic.ToJSON()))
		}
	}
}

// SubscriberOffer queues the SFU's offer; the client answers through its
// Signal. A second offer before the first is answered fails the test.
func (c *Client) SubscriberOffer(offer webrtc.SessionDescription) {
	c.offers.Add(1)
	if c.offerOut.Swap(true) {
		c.glare.Add(1)
		c.t.Errorf("%s: second subscriber offer before the first was answered", c.ID)
	}
	c.candMu.Lock()
	c.ufrag[sfu.Subscriber] = ICEUfrag(offer.SDP)
	c.candMu.Unlock()
	c.post(func() {
		c.waitICE()
		if err := c.Sub.SetRemoteDescription(offer); err != nil {
			c.failed("subscriber offer", err)
			return
		}
		c.flushCandidates(sfu.Subscriber)
		answer, err := c.Sub.CreateAnswer(nil)
		if err == nil {
			err = c.Sub.SetLocalDescription(answer)
		}
		if err == nil {
			// Answering may make the SFU send its next offer at once.
			c.offerOut.Store(false)
			err = c.sig.Answer(answer)
		}
		c.failed("subscriber answer", err)
	})
}

// waitICE lets the subscriber connection's first ICE come up before a
// renegotiation is applied (at most 5 s): pion as an answerer sometimes
// picks new ICE credentials when an offer arrives before its ICE
// transport started ("username mismatch", a connection stuck in
// "connecting"); browsers do not.
func (c *Client) waitICE() {
	if c.Sub.RemoteDescription() == nil {
		return
	}
	for range 500 {
		switch c.Sub.ICEConnectionState() {
		case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
			return
		}
		select {
		case <-c.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ICECandidate adds a candidate of the SFU's, or keeps it until the
// remote description it belongs to is applied. It does not wait for the
// queued offers: one may be held until ICE is up, and ICE needs these.
func (c *Client) ICECandidate(target sfu.Target, ic *webrtc.ICECandidateInit) {
	if ic == nil {
		return
	}
	c.candMu.Lock()
	defer c.candMu.Unlock()
	pc := c.Pub
	if target == sfu.Subscriber {
		pc = c.Sub
	}
	if pc == nil || !c.applied(target, pc) {
		c.pending[target] = append(c.pending[target], *ic)
		return
	}
	c.failed("add candidate", pc.AddICECandidate(*ic))
}

// applied reports whether pc's remote description is the newest one the
// client has seen. Called with candMu held.
func (c *Client) applied(target sfu.Target, pc *webrtc.PeerConnection) bool {
	rd := pc.RemoteDescription()
	return rd != nil && ICEUfrag(rd.SDP) == c.ufrag[target]
}

func (c *Client) flushCandidates(target sfu.Target) {
	c.candMu.Lock()
	defer c.candMu.Unlock()
	pc := c.Pub
	if target == sfu.Subscriber {
		pc = c.Sub
	}
	if !c.applied(target, pc) {
		return // a newer description is on its way
	}
	for _, cand := range c.pending[target] {
		c.failed("add candidate", pc.AddICECandidate(cand))
	}
	c.pending[target] = nil
}

// ICEUfrag returns an SDP's first a=ice-ufrag value.
func ICEUfrag(sdp string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// TrackPublished records the SFU's event (see Published).
func (c *Client) TrackPublished(ti sfu.TrackInfo) {
	c.mu.Lock()
	c.published = append(c.published, ti)
	c.mu.Unlock()
}

// TrackUnpublished records the SFU's event (see Unpublished).
func (c *Client) TrackUnpublished(ti sfu.TrackInfo) {
	c.mu.Lock()
	c.unpublished = append(c.unpublished, ti)
	c.mu.Unlock()
}

// ConnectionState ignores the SFU's connection states.
func (c *Client) ConnectionState(sfu.Target, webrtc.PeerConnectionState) {}

// Speakers records the room's speaker updates (sfu.SpeakerEvents).
func (c *Client) Speakers(u sfu.SpeakerUpdate) {
	c.mu.Lock()
	c.speakers = append(c.speakers, u)
	c.mu.Unlock()
}

// ActiveLayers is one dynacast request of the SFU (sfu.LayerEvents).
type ActiveLayers struct {
	TrackSID string
	RIDs     []string
}

// ActiveLayers records the SFU's request (see LayerRequests).
func (c *Client) ActiveLayers(ti sfu.TrackInfo, rids []string) {
	c.mu.Lock()
	c.active = append(c.active, ActiveLayers{TrackSID: ti.SID, RIDs: rids})
	c.mu.Unlock()
}

// ConnectionQuality records the room's levels (sfu.QualityEvents).
func (c *Client) ConnectionQuality(levels map[string]sfu.Quality) {
	c.mu.Lock()
	c.quality = append(c.quality, levels)
	c.mu.Unlock()
}

// QualityLevels returns the last levels received (nil before any).
func (c *Client) QualityLevels() map[string]sfu.Quality {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.quality) == 0 {
		return nil
	}
	return c.quality[len(c.quality)-1]
}

// LayerRequests returns the dynacast requests received so far.
func (c *Client) LayerRequests() []ActiveLayers {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ActiveLayers(nil), c.active...)
}

// SpeakerUpdates returns the speaker updates received so far.
func (c *Client) SpeakerUpdates() []sfu.SpeakerUpdate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sfu.SpeakerUpdate(nil), c.speakers...)
}

// Published lists the TrackPublished events so far.
func (c *Client) Published() []sfu.TrackInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sfu.TrackInfo(nil), c.published...)
}

// Unpublished lists the TrackUnpublished events so far.
func (c *Client) Unpublished() []sfu.TrackInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sfu.TrackInfo(nil), c.unpublished...)
}

// Offers counts the SFU's subscriber offers; Glare those that came
// while one was unanswered; OfferOutstanding says whether one is.
func (c *Client) Offers() int64          { return c.offers.Load() }
func (c *Client) Glare() int64           { return c.glare.Load() }
func (c *Client) OfferOutstanding() bool { return c.offerOut.Load() }

// SenderReports counts the RTCP sender reports on received tracks.
func (c *Client) SenderReports() int64 { return c.senderReports.Load() }

func (c *Client) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	c.wg.Go(func() {
		for {
			pkts, _, err := recv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.SenderReport); ok {
					c.senderReports.Add(1)
				}
			}
		}
	})
	rt := &Track{StreamID: tr.StreamID(), ID: tr.ID(), Kind: tr.Kind(), Codec: tr.Codec(), SSRC: tr.SSRC()}
	if !c.o.CountOnly {
		rt.Seqs, rt.Orig, rt.RTXOrig = map[uint16]int{}, map[uint16]int{}, map[uint16]int{}
	}
	c.mu.Lock()
	c.remote[tr.ID()] = rt
	c.mu.Unlock()
	for {
		p, attrs, err := tr.ReadRTP()
		c.mu.Lock()
		if err != nil {
			rt.Ended = true
			c.mu.Unlock()
			return
		}
		rt.Count++
		rtx := attrs.Get(webrtc.AttributeRtxSsrc) != nil
		if rtx {
			rt.RTX++
		}
		if rt.Seqs != nil {
			rt.Seqs[p.SequenceNumber]++
			if len(p.Payload) >= 4 {
				orig := uint16(p.Payload[2])<<8 | uint16(p.Payload[3])
				rt.Orig[orig]++
				if rtx {
					rt.RTXOrig[orig]++
				}
			}
		}
		if len(rt.Packets) < c.o.KeepPackets {
			rt.Packets = append(rt.Packets, p)
		}
		c.mu.Unlock()
	}
}

// RemoteTracks returns a copy of every track received, by track id.
func (c *Client) RemoteTracks() map[string]Track {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Track, len(c.remote))
	for id, rt := range c.remote {
		out[id] = rt.copy()
	}
	return out
}

func (rt *Track) copy() Track {
	cp := *rt
	if rt.Seqs != nil {
		cp.Seqs, cp.Orig, cp.RTXOrig = maps.Clone(rt.Seqs), maps.Clone(rt.Orig), maps.Clone(rt.RTXOrig)
	}
	cp.Packets = append([]*rtp.Packet(nil), rt.Packets...)
	return cp
}

// TrackOfKind returns a copy of a received track of this kind.
func (c *Client) TrackOfKind(kind webrtc.RTPCodecType) (Track, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.remote {
		if rt.Kind == kind {
			return rt.copy(), true
		}
	}
	return Track{}, false
}

// Received is the number of packets received on one track.
func (c *Client) Received(trackID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt := c.remote[trackID]; rt != nil {
		return rt.Count
	}
	return 0
}

// ReceivedKind is Received for the track TrackOfKind returns.
func (c *Client) ReceivedKind(kind webrtc.RTPCodecType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.remote {
		if rt.Kind == kind {
			return rt.Count
		}
	}
	return 0
}

// TotalReceived is the number of packets received on all tracks.
func (c *Client) TotalReceived() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, rt := range c.remote {
		n += rt.Count
	}
	return n
}

// WaitTracksEnded waits until the client has seen n tracks and every
// one of them ended. The limit is generous: under the race detector with
// every package's tests in parallel on two cores this took over 10 s.
// On failure it says which tracks are still open.
func (c *Client) WaitTracksEnded(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		var open []string
		for _, rt := range c.remote {
			if !rt.Ended {
				open = append(open, fmt.Sprintf("%s %s (%d packets)", rt.Kind, rt.ID, rt.Count))
			}
		}
		seen := len(c.remote)
		c.mu.Unlock()
		if seen == n && len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d tracks seen (want %d), still open after 30 s: %v", c.ID, seen, n, open)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SendPLI asks the SFU for a key frame on a received track.
func (c *Client) SendPLI(ssrc webrtc.SSRC) error {
	return c.Sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
}

// peerSignal is Join's Signal: straight to the sfu.Peer.
type peerSignal struct{ c *Client }

func (s peerSignal) Answer(a webrtc.SessionDescription) error { return s.c.Peer.HandleAnswer(a) }
func (s peerSignal) Candidate(target sfu.Target, ci webrtc.ICECandidateInit) error {
	return s.c.Peer.AddICECandidate(target, ci)
}
