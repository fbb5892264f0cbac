package sfu

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/vnet"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/internal/testkit"
)

// Network tests: real pion clients and the SFU on pion's virtual network.

const sfuIP = "10.9.0.1"

type testEnv struct {
	t      testing.TB
	router *vnet.Router
	sfu    *SFU
	reg    *prometheus.Registry
	nextIP atomic.Int32
	log    *slog.Logger
	stop   func() // cancels Run and waits for it; idempotent

	clientNetworks []webrtc.NetworkType // loopback env: restrict clients (e.g. TCP only)
	clientIface    string               // real network: clients use only this interface (default lo)
}

func testLogger() *slog.Logger {
	if os.Getenv("SFU_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestEnv(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	log := testLogger()
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.9.0.0/24", LoggerFactory: logging.PionFactory(log)})
	if err != nil {
		t.Fatal(err)
	}
	sfuNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{sfuIP}})
	if err != nil {
		t.Fatal(err)
	}
	if err := router.AddNet(sfuNet); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, router: router, reg: prometheus.NewRegistry(), log: log}
	env.nextIP.Store(10)
	// Clients are added after Start; vnet allows that.
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	cfg.TCPPort = 0                         // vnet has no TCP
	t.Cleanup(func() { _ = router.Stop() }) // runs after the SFU stopped
	env.startSFU(cfg, sfuNet)
	return env
}

// newLoopbackEnv runs the SFU on the real network, restricted to the
// loopback interface (tests never touch other addresses).
func newLoopbackEnv(t testing.TB, cfg Config) *testEnv {
	env := &testEnv{t: t, reg: prometheus.NewRegistry(), log: testLogger()}
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.CIDRs = []string{"127.0.0.0/8"}
	env.startSFU(cfg, nil)
	return env
}

func (env *testEnv) startSFU(cfg Config, n transport.Net) {
	t := env.t
	var err error
	env.sfu, err = New(cfg, Deps{Logger: env.log, Registry: env.reg, Net: n})
	if err != nil {
		t.Fatal(err)
	}
	env.stop = testkit.RunInBackground(t, "Run", env.sfu.Run)
}

// client is a pion endpoint playing the browser's part.
type client struct {
	t    testing.TB
	id   string
	ip   string
	peer *Peer
	api  *webrtc.API
	pub  *webrtc.PeerConnection
	sub  *webrtc.PeerConnection

	// events from the SFU, processed in order on one goroutine
	evq  chan func()
	done chan struct{}
	wg   sync.WaitGroup

	candMu  sync.Mutex
	pending map[Target][]webrtc.ICECandidateInit

	mu          sync.Mutex
	published   []TrackInfo
	unpublished []TrackInfo
	remote      map[string]*remoteTrack // by track id

	// publisher side
	track     *webrtc.TrackLocalStaticRTP
	sender    *webrtc.RTPSender
	nacked    map[uint16]int
	plis      atomic.Int64
	skipSeq   atomic.Int32 // -1: none; otherwise the publisher never sends this seq
	sentCount atomic.Int64

	manual    bool // publisher tracks send nothing by themselves (benchmarks write directly)
	countOnly bool // subscriber only counts packets (benchmarks)

	// subscriber negotiation
	offerOut atomic.Bool  // an SFU offer is unanswered
	offers   atomic.Int64 // offers received
	glare    atomic.Int64 // offers received while one was unanswered

	receiverReports atomic.Int64 // RTCP RR from the SFU about our published tracks
	senderReports   atomic.Int64 // RTCP SR from the SFU on tracks we receive
	codecs          sync.Map     // received track id -> webrtc.RTPCodecParameters
}

type remoteTrack struct {
	streamID, id string
	ssrc         uint32
	seqs         map[uint16]int // outgoing seq -> times received
	orig         map[uint16]int // publisher seq (from the payload) -> times
	count        int
	ended        bool
}

func (e *testEnv) newClient(room, id string, opts JoinOptions) *client {
	return e.newClientWith(room, id, opts, nil)
}

// newClientWith is newClient with a hook to adjust the client before it joins.
func (e *testEnv) newClientWith(room, id string, opts JoinOptions, adjust func(*client)) *client {
	t := e.t
	t.Helper()
	se := webrtc.SettingEngine{LoggerFactory: logging.PionFactory(e.log.With("client", id))}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var ip string
	if e.router != nil {
		ip = "10.9.0." + strconv.Itoa(int(e.nextIP.Add(1)))
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.router.AddNet(n); err != nil {
			t.Fatal(err)
		}
		se.SetNet(n)
	} else if e.clientIface != "" {
		// A test host's interface in a network namespace of the test's own.
		se.SetInterfaceFilter(func(name string) bool { return name == e.clientIface })
	} else {
		// Real loopback: like Chromium with --allow-loopback-in-peer-connection.
		ip = "127.0.0.1"
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		if e.clientNetworks != nil {
			se.SetNetworkTypes(e.clientNetworks)
		}
	}
	var err error
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	// Like a browser: NACK generator/responder and RTCP reports.
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		t.Fatal(err)
	}
	c := &client{
		t: t, id: id, ip: ip,
		api:     webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg)),
		evq:     make(chan func(), 4096),
		done:    make(chan struct{}),
		pending: map[Target][]webrtc.ICECandidateInit{},
		remote:  map[string]*remoteTrack{},
		nacked:  map[uint16]int{},
	}
	c.skipSeq.Store(-1)
	if adjust != nil {
		adjust(c)
	}
	if opts.CanSubscribe {
		c.sub, err = c.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		c.sub.OnICECandidate(func(ic *webrtc.ICECandidate) {
			if ic != nil {
				if err := c.peer.AddICECandidate(Subscriber, ic.ToJSON()); err != nil {
					t.Errorf("subscriber candidate: %v", err)
				}
			}
		})
		c.sub.OnTrack(c.onTrack)
	}
	opts.Events = c
	// Join may already send the first subscriber offer; the event loop
	// starts once c.peer is set.
	c.peer, err = e.sfu.Join(room, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.wg.Go(c.eventLoop)
	t.Cleanup(c.close)
	return c
}

func (c *client) close() {
	_ = c.peer.Close()
	for _, pc := range []*webrtc.PeerConnection{c.pub, c.sub} {
		if pc != nil {
			_ = pc.Close()
		}
	}
	close(c.done)
	c.wg.Wait()
}

func (c *client) eventLoop() {
	for {
		select {
		case <-c.done:
			return
		case f := <-c.evq:
			f()
		}
	}
}

func (c *client) post(f func()) {
	select {
	case c.evq <- f:
	default:
		c.t.Error("client event queue overflow")
	}
}

// PeerEvents, called by the SFU; queue only.
func (c *client) SubscriberOffer(offer webrtc.SessionDescription) {
	c.offers.Add(1)
	if c.offerOut.Swap(true) {
		c.glare.Add(1)
		c.t.Errorf("%s: second subscriber offer before the first was answered", c.id)
	}
	c.post(func() {
		if err := c.sub.SetRemoteDescription(offer); err != nil {
			if !c.peer.isClosed() && !c.peer.s.isClosed() {
				c.t.Errorf("%s: subscriber offer: %v", c.id, err)
			}
			return
		}
		c.flushCandidates(Subscriber, c.sub)
		answer, err := c.sub.CreateAnswer(nil)
		if err == nil {
			err = c.sub.SetLocalDescription(answer)
		}
		if err == nil {
			c.offerOut.Store(false)
			err = c.peer.HandleAnswer(answer)
		}
		if err != nil && !c.peer.isClosed() && !c.peer.s.isClosed() {
			c.t.Errorf("%s: subscriber answer: %v", c.id, err)
		}
	})
}

func (c *client) ICECandidate(target Target, ic *webrtc.ICECandidateInit) {
	if ic == nil {
		return
	}
	cand := *ic
	c.post(func() {
		pc := c.pub
		if target == Subscriber {
			pc = c.sub
		}
		c.candMu.Lock()
		defer c.candMu.Unlock()
		if pc == nil || pc.RemoteDescription() == nil || !ufragMatches(cand, pc.RemoteDescription().SDP) {
			c.pending[target] = append(c.pending[target], cand)
			return
		}
		if err := pc.AddICECandidate(cand); err != nil {
			c.t.Errorf("%s: add candidate: %v", c.id, err)
		}
	})
}

func (c *client) flushCandidates(target Target, pc *webrtc.PeerConnection) {
	c.candMu.Lock()
	defer c.candMu.Unlock()
	for _, cand := range c.pending[target] {
		if err := pc.AddICECandidate(cand); err != nil {
			c.t.Errorf("%s: add candidate: %v", c.id, err)
		}
	}
	c.pending[target] = nil
}

func (c *client) TrackPublished(ti TrackInfo) {
	c.mu.Lock()
	c.published = append(c.published, ti)
	c.mu.Unlock()
}

func (c *client) TrackUnpublished(ti TrackInfo) {
	c.mu.Lock()
	c.unpublished = append(c.unpublished, ti)
	c.mu.Unlock()
}

func (c *client) ConnectionState(Target, webrtc.PeerConnectionState) {}

func (c *client) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	c.codecs.Store(tr.ID(), tr.Codec())
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
	rt := &remoteTrack{streamID: tr.StreamID(), id: tr.ID(), ssrc: uint32(tr.SSRC()),
		seqs: map[uint16]int{}, orig: map[uint16]int{}}
	c.mu.Lock()
	c.remote[tr.ID()] = rt
	c.mu.Unlock()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			c.mu.Lock()
			rt.ended = true
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		rt.count++
		if c.countOnly {
			c.mu.Unlock()
			continue
		}
		rt.seqs[p.SequenceNumber]++
		if len(p.Payload) >= 4 {
			rt.orig[uint16(p.Payload[2])<<8|uint16(p.Payload[3])]++
		}
		c.mu.Unlock()
	}
}

// localTrack is one track the test client publishes.
type localTrack struct {
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	stop   chan struct{}
}

// publish adds a VP8 track, negotiates, and sends one-packet frames every
// 5 ms (a key frame every 50, and whenever a PLI arrives) until the test ends.
func (c *client) publish() {
	c.addTrack("video", "cam-"+c.id)
	c.negotiatePublisher(false)
}

func (c *client) ensurePublisher() {
	if c.pub != nil {
		return
	}
	var err error
	c.pub, err = c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.pub.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			if err := c.peer.AddICECandidate(Publisher, ic.ToJSON()); err != nil {
				c.t.Errorf("publisher candidate: %v", err)
			}
		}
	})
}

// negotiatePublisher makes an offer on the publisher connection (with an
// ICE restart if asked) and applies the SFU's answer.
func (c *client) negotiatePublisher(restart bool) webrtc.SessionDescription {
	t := c.t
	offer, err := c.pub.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, err := c.peer.HandleOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	c.post(func() {
		if err := c.pub.SetRemoteDescription(answer); err != nil {
			t.Errorf("publisher answer: %v", err)
		}
		c.flushCandidates(Publisher, c.pub)
		close(done)
	})
	<-done
	return answer
}

// addTrack adds a local track (not yet negotiated) and starts its media
// and RTCP loops. Video: one-packet VP8 frames every 5 ms, a key frame
// every 50 and after each PLI. Audio: an Opus-sized packet every 20 ms.
func (c *client) addTrack(kind, trackID string) *localTrack {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}
	if kind == "audio" {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}
	}
	return c.addTrackCodec(codec, trackID)
}

// addTrackCodec is addTrack with an explicit codec (VP8, H.264 or Opus).
func (c *client) addTrackCodec(codec webrtc.RTPCodecCapability, trackID string) *localTrack {
	t := c.t
	c.ensurePublisher()
	kind, interval := "video", 5*time.Millisecond
	if strings.HasPrefix(codec.MimeType, "audio/") {
		kind, interval = "audio", 20*time.Millisecond
	}
	h264 := strings.EqualFold(codec.MimeType, webrtc.MimeTypeH264)
	track, err := webrtc.NewTrackLocalStaticRTP(codec, trackID, "stream-"+c.id)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := c.pub.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	lt := &localTrack{track: track, sender: sender, stop: make(chan struct{})}
	if c.track == nil {
		c.track, c.sender = track, sender
	}
	wantKey := make(chan struct{}, 1)
	c.wg.Go(func() { // RTCP from the SFU
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return
			}
			pkts, err := rtcp.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.ReceiverReport:
					c.receiverReports.Add(1)
				case *rtcp.PictureLossIndication:
					c.plis.Add(1)
					select {
					case wantKey <- struct{}{}:
					default:
					}
				case *rtcp.TransportLayerNack:
					c.mu.Lock()
					for _, pair := range p.Nacks {
						for _, s := range pair.PacketList() {
							c.nacked[s]++
						}
					}
					c.mu.Unlock()
				}
			}
		}
	})
	if c.manual {
		return lt
	}
	c.wg.Go(func() { // media
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-c.done:
				return
			case <-lt.stop:
				return
			case <-tick.C:
			}
			key := i%50 == 0
			select {
			case <-wantKey:
				key = true
			default:
			}
			seq := uint16(i)
			if kind == "video" && int32(seq) == c.skipSeq.Load() {
				continue // "lost" on the way to the SFU
			}
			b0, b1 := byte(0x10), byte(0x01) // VP8 descriptor, then the frame's key bit
			if key {
				b1 = 0
			}
			if h264 {
				b0, b1 = 0x41, 0x9a // non-IDR slice
				if key {
					b0 = 0x65 // IDR slice
				}
			}
			payload := append([]byte{b0, b1, byte(seq >> 8), byte(seq)}, make([]byte, 600)...)
			err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq,
				Timestamp: uint32(i) * 450, Marker: true}, Payload: payload})
			if err != nil {
				return
			}
			if kind == "video" {
				c.sentCount.Add(1)
			}
		}
	})
	return lt
}

// removeTrack stops sending lt and removes it from the publisher
// connection (renegotiation is up to the caller).
func (c *client) removeTrack(lt *localTrack) {
	close(lt.stop)
	if err := c.pub.RemoveTrack(lt.sender); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) remoteTracks() map[string]remoteTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]remoteTrack{}
	for id, rt := range c.remote {
		cp := *rt
		cp.seqs = map[uint16]int{}
		for k, v := range rt.seqs {
			cp.seqs[k] = v
		}
		cp.orig = map[uint16]int{}
		for k, v := range rt.orig {
			cp.orig[k] = v
		}
		out[id] = cp
	}
	return out
}

// totalReceived is the number of packets received on all tracks.
func (c *client) totalReceived() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, rt := range c.remote {
		n += rt.count
	}
	return n
}

func (c *client) received(trackID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt := c.remote[trackID]; rt != nil {
		return rt.count
	}
	return 0
}

func (c *client) nackedCount(seq uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nacked[seq]
}
