package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu/internal/audiolevel"
	"github.com/parleyhq/parley/sfu/internal/nackgen"
	"github.com/parleyhq/parley/sfu/internal/probe"
	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// Peer is one participant's media session: a publisher connection (the
// client offers, HandleOffer answers) and a subscriber connection (the SFU
// offers through PeerEvents.SubscriberOffer, HandleAnswer completes it).
//
// Do not call Close from inside a PeerEvents callback: Close waits for the
// goroutines that deliver those callbacks.
type Peer struct {
	s      *SFU
	room   string
	id     string
	opts   JoinOptions
	events PeerEvents
	log    *slog.Logger
	queue  *sendQueue // nil without CanSubscribe

	pub *webrtc.PeerConnection // nil without CanPublish
	// nacks asks the publisher for lost video packets; its loop runs
	// until stopNACK closes (both nil without CanPublish).
	nacks    *nackgen.Generator
	stopNACK chan struct{}
	sub      *webrtc.PeerConnection // nil without CanSubscribe
	// subReady is set while the subscriber connection is connected. pion
	// discards (without an error) RTP written before DTLS has produced
	// SRTP keys, so forwarding waits for it; a key frame sent into that
	// void would leave the viewer waiting for the next one.
	subReady atomic.Bool
	// bwe estimates the subscriber connection's available bandwidth
	// (set while the connection is built, nil without CanSubscribe);
	// selectLoop turns it and the tile reports (viewed) into layers.
	bwe        cc.BandwidthEstimator
	viewed     chan struct{}
	stopSelect chan struct{}
	estimate   atomic.Int64 // the last estimate selectLoop used, bit/s
	fall       fallWatch    // wakes selectLoop when the estimator's target falls
	// subRTT is the subscriber connection's ICE round trip (ns, 0
	// unknown), refreshed by selectLoop; rtxBudget holds the
	// retransmissions in answer to its NACKs (rtxthrottle.go).
	subRTT    atomic.Int64
	rtxBudget rtxBudget
	// pubPaired and subPaired are set once ICE has selected a candidate
	// pair on the connection. Before that there are no round-trip
	// stats, and asking pion for them races with its ICE transport's
	// start (it swaps its gatherer in without the lock the stats read
	// would need; found by the race detector in CI).
	pubPaired, subPaired atomic.Bool
	// probes records the bandwidth probes' packets and feedback (nil
	// without bandwidth estimation); probing is set while a probe
	// cluster is sent or judged (probe.go).
	probes  *probe.Recorder
	probing atomic.Bool
	// rtxfb reads the subscriber's feedback on its RTX SSRCs for the
	// estimator and the probes (rtxfeedback.go; nil without bandwidth
	// estimation).
	rtxfb *rtxFeedback
	// activeSpeaker is the room's active speaker as last told to this
	// peer (nil before any), for its layer choice (priority.go).
	activeSpeaker atomic.Pointer[string]

	// pubState and subState are the connections' last states, for
	// ConnectionQuality.
	pubState, subState pcState

	pubMu      sync.Mutex // serialises publisher negotiation
	pubPending []webrtc.ICECandidateInit

	subMu       sync.Mutex // serialises subscriber negotiation and track changes
	subPending  []webrtc.ICECandidateInit
	offering    bool // an offer is out and unanswered
	renegotiate bool // tracks changed while offering
	restartICE  bool // RestartICE called while offering

	mu        sync.Mutex // guards the fields below
	closed    bool
	published map[string]*publishedTrack // by SID
	bySSRC    map[uint32]*publishedTrack
	byRecv    map[*webrtc.RTPReceiver]*publishedTrack // simulcast tracks, to gather their layers
	// reading are the remote tracks a goroutine of wg reads; Close ends
	// their reads by deadline (unblockReads).
	reading []*webrtc.TrackRemote
	down    map[string]*downTrack // by source track SID
	wg      sync.WaitGroup
}

func newPeer(s *SFU, roomName, id string, opts JoinOptions) (*Peer, error) {
	log := opts.Logger
	if log == nil {
		log = s.log
	}
	p := &Peer{
		s:         s,
		room:      roomName,
		id:        id,
		opts:      opts,
		events:    opts.Events,
		log:       log.With("room", roomName, "participant", id),
		published: map[string]*publishedTrack{},
		bySSRC:    map[uint32]*publishedTrack{},
		byRecv:    map[*webrtc.RTPReceiver]*publishedTrack{},
		down:      map[string]*downTrack{},
	}
	if p.events == nil {
		p.events = noEvents{}
	}
	if opts.CanPublish {
		follow := newNominationFollower()
		api, err := s.newPublisherAPI(p.countUpstreamRTCP, follow)
		if err != nil {
			return nil, err
		}
		if p.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			return nil, fmt.Errorf("publisher connection: %w", err)
		}
		p.watch(p.pub, Publisher, follow)
		p.nacks = nackgen.New(nackgen.Config{SenderSSRC: rand.Uint32(), RTT: p.publisherRTT}, p.pub.WriteRTCP)
		p.pub.OnTrack(p.onTrack)
	}
	if opts.CanSubscribe {
		follow := newNominationFollower()
		var taps *rtcpTaps
		if s.cfg.BandwidthEstimation {
			p.probes = &probe.Recorder{}
			taps = &rtcpTaps{}
		}
		// viewed exists before the estimator that wakes selectLoop on it.
		p.viewed = make(chan struct{}, 1)
		api, err := s.newSubscriberAPI(func(e cc.BandwidthEstimator) {
			p.bwe = e
			e.OnTargetBitrateChange(p.estimateChanged)
		}, p.probes, taps, follow)
		if err != nil {
			_ = p.closePCs()
			return nil, err
		}
		if p.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			_ = p.closePCs() // the creation error is the one to report
			return nil, fmt.Errorf("subscriber connection: %w", err)
		}
		p.watch(p.sub, Subscriber, follow)
		if taps != nil {
			p.rtxfb = newRTXFeedback(p.sub, taps, webrtc.SettingEngine{LoggerFactory: s.pionLog}, p.log)
		}
		// Only subscribers get a send queue: a chat-only or publish-only
		// peer would hold one (SubscriberQueue slots) for nothing.
		p.queue = newSendQueue(s.cfg.SubscriberQueue, s.m, s.corks)
		if hook := s.testBeforeWrite; hook != nil {
			p.queue.beforeWrite = func() { hook(id) }
		}
		p.wg.Go(p.queue.run)
		p.stopSelect = make(chan struct{})
		p.wg.Go(p.selectLoop)
	}
	if p.nacks != nil {
		p.stopNACK = make(chan struct{})
		p.wg.Go(func() { p.nacks.Run(p.stopNACK) })
	}
	return p, nil
}

// publisherRTT is the publisher connection's round trip as ICE measured
// it (0 before the first measure), for the NACK generator's retries.
func (p *Peer) publisherRTT() time.Duration {
	if !p.pubPaired.Load() {
		return 0
	}
	st, ok := p.pub.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		return 0
	}
	return time.Duration(st.CurrentRoundTripTime * float64(time.Second))
}

// unblockReads ends every remote track's read that closing the
// connection did not: with ten synthetic simulcast publishers (parley
// load --simulcast, 10 x 10) layer readers were found still blocked in
// pion's SRTP read stream after the publisher's connection closed, and
// Close (and so the server's shutdown) waited for them forever. A read
// deadline in the past wakes a blocked read with an error.
func (p *Peer) unblockReads() {
	p.mu.Lock()
	reading := p.reading
	p.reading = nil
	p.mu.Unlock()
	past := time.Unix(1, 0)
	for _, r := range reading {
		_ = r.SetReadDeadline(past) // fails harmlessly for a stream pion already closed
	}
}

// trackNACKs returns the NACK generator's tracker for a publisher stream,
// or nil where its codec did not negotiate NACK (audio).
func (p *Peer) trackNACKs(ssrc uint32, codec webrtc.RTPCodecParameters) *nackgen.Tracker {
	for _, fb := range codec.RTCPFeedback {
		if fb.Type == webrtc.TypeRTCPFBNACK && fb.Parameter == "" {
			return p.nacks.Add(ssrc)
		}
	}
	return nil
}

func (p *Peer) watch(pc *webrtc.PeerConnection, target Target, follow *nominationFollower) {
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(cp *webrtc.ICECandidatePair) {
		if target == Subscriber {
			p.subPaired.Store(true)
		} else {
			p.pubPaired.Store(true)
		}
		// Rare (once per connection, again on a network change or a
		// remote that nominated several pairs) and what tells which
		// path media takes.
		p.log.Info("selected candidate pair", "target", target.String(), "pair", cp.String())
		follow.selectedChanged(cp)
		if target == Subscriber && p.queue != nil {
			p.queue.overTCP.Store(cp.Local.Protocol == webrtc.ICEProtocolTCP)
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			p.events.ICECandidate(target, nil)
			return
		}
		init := c.ToJSON()
		p.events.ICECandidate(target, &init)
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		p.log.Debug("connection state", "target", target.String(), "state", st.String())
		if target == Subscriber {
			p.subState.set(st)
		} else {
			p.pubState.set(st)
		}
		if target == Subscriber && st == webrtc.PeerConnectionStateConnected {
			p.subReady.Store(true)
		}
		p.events.ConnectionState(target, st)
	})
}

// ID is the participant id given to Join.
func (p *Peer) ID() string { return p.id }

// Room is the room name given to Join.
func (p *Peer) Room() string { return p.room }

// HandleOffer applies an offer for the publisher connection (first offer,
// renegotiation adding or removing tracks, or an ICE restart) and returns
// the answer. Local candidates trickle through PeerEvents.ICECandidate.
func (p *Peer) HandleOffer(offer webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	if p.pub == nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publisher offer: %w", ErrNotAllowed)
	}
	if offer.Type != webrtc.SDPTypeOffer {
		return webrtc.SessionDescription{}, fmt.Errorf("publisher offer: got SDP type %q", offer.Type)
	}
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if err := p.pub.SetRemoteDescription(offer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publisher offer: %w", err)
	}
	p.pubPending = addPending(p.pub, p.pubPending, p.log)
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publisher answer: %w", err)
	}
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publisher answer: %w", err)
	}
	if p.s.cfg.AudioDTX {
		answer.SDP = withOpusDTX(answer.SDP)
	}
	return answer, nil
}

// HandleAnswer applies the client's answer to the outstanding subscriber
// offer and sends the next offer if tracks changed meanwhile.
func (p *Peer) HandleAnswer(answer webrtc.SessionDescription) error {
	if p.sub == nil {
		return fmt.Errorf("subscriber answer: %w", ErrNotAllowed)
	}
	if answer.Type != webrtc.SDPTypeAnswer {
		return fmt.Errorf("subscriber answer: got SDP type %q", answer.Type)
	}
	p.subMu.Lock()
	defer p.subMu.Unlock()
	if !p.offering {
		return errors.New("subscriber answer: no offer outstanding")
	}
	if err := p.sub.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("subscriber answer: %w", err)
	}
	p.offering = false
	p.subPending = addPending(p.sub, p.subPending, p.log)
	if p.renegotiate || p.restartICE {
		// A failed offer is retried at the next change; the answer being
		// handled is what this call reports on.
		_ = p.negotiateLocked()
	}
	return nil
}

// AddICECandidate adds a remote candidate to one connection. Candidates
// that arrive before that connection's remote description, or that carry
// an ICE ufrag other than the current remote one (trickled for an ICE
// restart whose offer/answer is not applied yet), are kept and applied
// right after the next remote description.
func (p *Peer) AddICECandidate(target Target, c webrtc.ICECandidateInit) error {
	pc, mu, pending := p.pub, &p.pubMu, &p.pubPending
	if target == Subscriber {
		pc, mu, pending = p.sub, &p.subMu, &p.subPending
	}
	if pc == nil {
		return fmt.Errorf("%s candidate: %w", target, ErrNotAllowed)
	}
	mu.Lock()
	defer mu.Unlock()
	rd := pc.RemoteDescription()
	if rd == nil || !ufragMatches(c, rd.SDP) {
		if len(*pending) >= maxPendingCandidates {
			// Oldest first: a stale generation's candidates go before
			// the ones for the description that is about to arrive.
			*pending = (*pending)[1:]
		}
		*pending = append(*pending, c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%s candidate: %w", target, err)
	}
	return nil
}

const maxPendingCandidates = 64

// ufragMatches reports whether a candidate belongs to the ICE generation
// of the given remote SDP. Candidates that do not say (no
// usernameFragment, no "ufrag" attribute) are assumed to match.
func ufragMatches(c webrtc.ICECandidateInit, sdp string) bool {
	u := ""
	if c.UsernameFragment != nil {
		u = *c.UsernameFragment
	}
	if u == "" {
		fields := strings.Fields(c.Candidate)
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] == "ufrag" {
				u = fields[i+1]
				break
			}
		}
	}
	if u == "" {
		return true
	}
	return sdpUfrag(sdp) == u
}

// sdpUfrag returns the first a=ice-ufrag value (one per bundle group;
// Parley bundles everything).
func sdpUfrag(sdp string) string {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

func addPending(pc *webrtc.PeerConnection, pending []webrtc.ICECandidateInit, log *slog.Logger) []webrtc.ICECandidateInit {
	for _, c := range pending {
		if err := pc.AddICECandidate(c); err != nil {
			log.Debug("queued candidate rejected", "err", err)
		}
	}
	return nil
}

// RestartICE sends a new subscriber offer with fresh ICE credentials (at
// once, or right after the outstanding offer is answered).
func (p *Peer) RestartICE() error {
	if p.sub == nil {
		return fmt.Errorf("ice restart: %w", ErrNotAllowed)
	}
	p.subMu.Lock()
	defer p.subMu.Unlock()
	p.restartICE = true
	if p.offering {
		return nil
	}
	return p.negotiateLocked()
}

// negotiateLocked sends a subscriber offer, or remembers to send one once
// the outstanding offer is answered: never two offers in flight, so the
// client never sees glare. Called with subMu held.
func (p *Peer) negotiateLocked() error {
	if p.offering {
		p.renegotiate = true
		return nil
	}
	if p.isClosed() || p.s.isClosed() {
		return ErrClosed // no offers to peers that are going away
	}
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: p.restartICE})
	if err != nil {
		return fmt.Errorf("subscriber offer: %w", err)
	}
	if err := p.sub.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("subscriber offer: %w", err)
	}
	p.offering, p.renegotiate, p.restartICE = true, false, false
	p.events.SubscriberOffer(offer)
	return nil
}

// subscribe adds downTracks for the given tracks and renegotiates once.
func (p *Peer) subscribe(tracks ...*publishedTrack) {
	if p.sub == nil || len(tracks) == 0 {
		return
	}
	p.subMu.Lock()
	defer p.subMu.Unlock()
	added := false
	for _, t := range tracks {
		if t.info.ParticipantID == p.id {
			continue
		}
		p.mu.Lock()
		skip := p.closed || p.down[t.info.SID] != nil
		p.mu.Unlock()
		if skip {
			continue
		}
		d := newDownTrack(t, p)
		sender, err := p.sub.AddTrack(d)
		if err != nil {
			p.log.Warn("subscribe", "track", t.info.SID, "err", err)
			continue
		}
		d.sender = sender
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = p.sub.RemoveTrack(sender)
			continue
		}
		p.down[t.info.SID] = d
		p.wg.Go(d.rtcpLoop)
		p.mu.Unlock()
		if !t.addDown(d) { // unpublished meanwhile
			p.mu.Lock()
			delete(p.down, t.info.SID)
			p.mu.Unlock()
			_ = p.sub.RemoveTrack(sender)
		}
		added = true
	}
	if added {
		if err := p.negotiateLocked(); err != nil && !errors.Is(err, ErrClosed) {
			p.log.Warn("subscriber negotiation", "err", err)
		}
	}
}

// unsubscribe removes the downTrack for t and renegotiates.
func (p *Peer) unsubscribe(t *publishedTrack) {
	if p.sub == nil {
		return
	}
	p.subMu.Lock()
	defer p.subMu.Unlock()
	p.mu.Lock()
	d := p.down[t.info.SID]
	delete(p.down, t.info.SID)
	closed := p.closed
	p.mu.Unlock()
	if d == nil {
		return
	}
	t.removeDown(d)
	if closed {
		return
	}
	if err := p.sub.RemoveTrack(d.sender); err != nil {
		p.log.Debug("remove track", "err", err)
	}
	if err := p.negotiateLocked(); err != nil && !errors.Is(err, ErrClosed) {
		p.log.Warn("subscriber negotiation", "err", err)
	}
}

// onTrack runs on pion's goroutine for each new incoming track, and for
// each layer of a simulcast track.
func (p *Peer) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if remote.RID() != "" && remote.Kind() == webrtc.RTPCodecTypeVideo {
		if rids := layerRIDs(recv); len(rids) > 1 {
			p.onLayer(remote, recv, rids)
			return
		}
	}
	codec := remote.Codec()
	ssrc := uint32(remote.SSRC())
	t := newPublishedTrack(p.s, trackParams{
		owner: p,
		room:  p.room,
		info: TrackInfo{
			SID:           newTrackSID(),
			ParticipantID: p.id,
			ClientTrackID: remote.ID(),
			Kind:          kindString(remote.Kind()),
			Codec:         codec.MimeType,
		},
		clockRate: codec.ClockRate,
		fmtp:      codec.SDPFmtpLine,
		sendPLI: func() error {
			return p.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		},
		levelID: audioLevelID(recv),
	})
	if t.levelID != 0 && !t.video {
		t.level = p.s.levelSource(p.room, p.id)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.published[t.info.SID] = t
	p.bySSRC[ssrc] = t
	nack := p.trackNACKs(ssrc, codec)
	p.reading = append(p.reading, remote)
	p.wg.Go(func() {
		t.readLoop(t.readRemote(remote, nack))
		// The publisher removed the track or the connection closed.
		t.end()
	})
	p.mu.Unlock()

	subs, ok := p.s.addTrack(t)
	if !ok {
		t.end()
		return
	}
	t.log.Info("track published", "kind", t.info.Kind, "codec", t.info.Codec, "client_track", t.info.ClientTrackID)
	p.events.TrackPublished(t.info)
	for _, q := range subs {
		q.subscribe(t)
	}
}

// audioLevelID is the id the publisher negotiated for the audio-level
// extension (0: none).
func audioLevelID(recv *webrtc.RTPReceiver) uint8 {
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == audiolevel.URI {
			return uint8(e.ID)
		}
	}
	return 0
}

// onLayer handles one layer of a simulcast track: the first layer pion
// reports publishes the track, each starts its own read loop.
func (p *Peer) onLayer(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver, rids []string) {
	l := slices.Index(rids, remote.RID())
	if l < 0 {
		// Read and discard it, so pion's buffer for it does not fill.
		p.log.Warn("simulcast layer beyond the supported ones ignored", "rid", remote.RID())
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.closed {
			p.reading = append(p.reading, remote)
			p.wg.Go(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := remote.Read(buf); err != nil {
						return
					}
				}
			})
		}
		return
	}
	ssrc := uint32(remote.SSRC())
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	t := p.byRecv[recv]
	created := t == nil
	if created {
		codec := remote.Codec()
		t = newPublishedTrack(p.s, trackParams{
			owner: p,
			room:  p.room,
			info: TrackInfo{
				SID:           newTrackSID(),
				ParticipantID: p.id,
				ClientTrackID: remote.ID(),
				Kind:          kindString(remote.Kind()),
				Codec:         codec.MimeType,
			},
			clockRate: codec.ClockRate,
			fmtp:      codec.SDPFmtpLine,
			rids:      rids,
			sendLayerPLI: func(ssrc uint32) error {
				return p.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
			},
		})
		p.byRecv[recv] = t
		p.published[t.info.SID] = t
	}
	if prev := t.layers[l].ssrc.Load(); prev != 0 && prev != ssrc {
		// pion binds a second SSRC carrying the same rid to the layer in
		// place of the first, and the layer's reader, which reads through
		// the same TrackRemote, follows it: no second reader. A sender
		// that puts rid (not repaired-rtp-stream-id) on its RTX stream
		// does this at its first retransmission, and the layer's real
		// stream stops arriving. Key frame requests stay on the first.
		p.mu.Unlock()
		if t.layers[l].moved.Swap(true) {
			return
		}
		p.log.Warn("simulcast layer moved to another SSRC; a sender's retransmissions carrying rid rather than repaired-rtp-stream-id do this",
			"track", t.info.SID, "rid", remote.RID(), "ssrc", ssrc, "previous_ssrc", prev)
		return
	}
	t.layers[l].ssrc.Store(ssrc)
	nack := p.trackNACKs(ssrc, remote.Codec())
	if nack != nil {
		layer := simulcast.Layer(l)
		nack.SetWanted(func() bool { return t.layerWatched(layer) })
	}
	p.bySSRC[ssrc] = t
	p.reading = append(p.reading, remote)
	p.wg.Go(func() {
		t.readLayerLoop(simulcast.Layer(l), t.readRemote(remote, nack))
		// The publisher removed the track or the connection closed:
		// every layer's read ends together.
		t.end()
	})
	p.mu.Unlock()
	if !created {
		return
	}
	subs, ok := p.s.addTrack(t)
	if !ok {
		t.end()
		return
	}
	t.log.Info("track published", "kind", t.info.Kind, "codec", t.info.Codec, "client_track", t.info.ClientTrackID,
		"layers", strings.Join(rids, ","))
	p.events.TrackPublished(t.info)
	for _, q := range subs {
		q.subscribe(t)
	}
}

// forgetTrack drops t from this peer's published tracks.
func (p *Peer) forgetTrack(t *publishedTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.published, t.info.SID)
	for ssrc, x := range p.bySSRC {
		if x == t {
			delete(p.bySSRC, ssrc)
			if p.nacks != nil {
				p.nacks.Remove(ssrc)
			}
		}
	}
	for r, x := range p.byRecv {
		if x == t {
			delete(p.byRecv, r)
		}
	}
}

// countUpstreamRTCP sees every RTCP batch the publisher connection sends
// (via the counter interceptor) and counts NACKed sequence numbers.
func (p *Peer) countUpstreamRTCP(pkts []rtcp.Packet) {
	for _, pkt := range pkts {
		nack, ok := pkt.(*rtcp.TransportLayerNack)
		if !ok {
			continue
		}
		var n uint64
		for _, pair := range nack.Nacks {
			n += 1 + uint64(bits.OnesCount16(uint16(pair.LostPackets)))
		}
		p.mu.Lock()
		t := p.bySSRC[nack.MediaSSRC]
		p.mu.Unlock()
		if t != nil {
			t.nacksOut.Add(n)
		}
		p.s.m.nacksOut.Add(float64(n))
	}
}

func (p *Peer) track(sid string) (*publishedTrack, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.published[sid]
	if t == nil {
		return nil, fmt.Errorf("track %s of %s: %w", sid, p.id, ErrTrackNotFound)
	}
	return t, nil
}

// Unpublish stops forwarding one of this participant's tracks to everyone
// (TrackUnpublished follows). The client removes its sender and
// renegotiates the publisher connection itself.
func (p *Peer) Unpublish(trackSID string) error {
	t, err := p.track(trackSID)
	if err != nil {
		return err
	}
	t.end()
	return nil
}

// SetTrackMuted stops (or resumes) forwarding a track to all subscribers
// without renegotiating: the admin mute. Video resumes at a key frame.
func (p *Peer) SetTrackMuted(trackSID string, muted bool) error {
	t, err := p.track(trackSID)
	if err != nil {
		return err
	}
	t.setMuted(muted)
	return nil
}

// Stats returns a snapshot of this participant's published tracks.
func (p *Peer) Stats() []TrackStats {
	p.mu.Lock()
	tracks := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		tracks = append(tracks, t)
	}
	p.mu.Unlock()
	return statsOf(tracks)
}

// Close unpublishes this participant's tracks (TrackUnpublished for
// each), removes it from the room, closes both connections and waits for
// its goroutines. Safe to call more than once.
func (p *Peer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	tracks := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		tracks = append(tracks, t)
	}
	downs := make([]*downTrack, 0, len(p.down))
	for _, d := range p.down {
		downs = append(downs, d)
	}
	p.down = map[string]*downTrack{}
	p.mu.Unlock()

	p.s.removePeer(p)
	for _, t := range tracks {
		t.end()
	}
	for _, d := range downs {
		d.src.removeDown(d)
	}
	err := p.closePCs()
	p.rtxfb.close() // what closing the senders did not unbind
	p.stopLoops()
	p.unblockReads()
	p.wg.Wait()
	p.log.Info("participant left")
	return err
}

// stopLoops tells the peer's own loops (not the read loops, which end
// with the connections) to return.
func (p *Peer) stopLoops() {
	if p.sub != nil {
		p.queue.stop()
		close(p.stopSelect)
	}
	if p.stopNACK != nil {
		close(p.stopNACK)
	}
}

func (p *Peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// abort undoes newPeer for a peer that never joined a room.
func (p *Peer) abort() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.closePCs()
	p.rtxfb.close()
	p.stopLoops()
	p.wg.Wait()
}

func (p *Peer) closePCs() error {
	var errs []error
	for _, pc := range []*webrtc.PeerConnection{p.pub, p.sub} {
		if pc != nil {
			if err := pc.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type noEvents struct{}

func (noEvents) SubscriberOffer(webrtc.SessionDescription)          {}
func (noEvents) ICECandidate(Target, *webrtc.ICECandidateInit)      {}
func (noEvents) TrackPublished(TrackInfo)                           {}
func (noEvents) TrackUnpublished(TrackInfo)                         {}
func (noEvents) ConnectionState(Target, webrtc.PeerConnectionState) {}
