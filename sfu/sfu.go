// Package sfu is Parley's selective forwarding unit: it terminates each
// participant's two WebRTC PeerConnections (publisher: client to server,
// subscriber: server to client), forwards every published track to every
// other subscriber in the room, answers NACKs from a per-track packet
// cache, throttles key-frame requests and keeps per-track statistics.
//
// ICE: the SFU runs full ICE (not ICE-lite). Lite would be enough for a
// server with a public address, but full ICE also works when the server
// sits behind a NAT with only srflx candidates, and pion's cost for it is
// negligible next to SRTP. All peers share one UDP port (UDPPort, one
// socket per allowed local address, demultiplexed by ICE ufrag; addresses
// that are not ready at start or appear later are bound as they come, see
// portMux) and one passive ICE-TCP port. No STUN servers are used; PublicIPs covers 1:1 NAT.
package sfu

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	pionlogging "github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/logging"
)

// Sentinel errors callers branch on.
var (
	ErrClosed            = errors.New("sfu: closed")
	ErrParticipantExists = errors.New("sfu: participant already joined this room")
	ErrNotAllowed        = errors.New("sfu: not allowed by the participant's grants")
	ErrTrackNotFound     = errors.New("sfu: no such track")
)

// Deps are the SFU's collaborators.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: metrics are kept but not registered
	// Net is the network ICE uses; tests pass a vnet.Net. nil is the real
	// network.
	Net transport.Net
}

// SFU owns the ICE listeners and all rooms.
type SFU struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	pionLog  pionlogging.LoggerFactory
	settings *webrtc.SettingEngine
	closers  []io.Closer // listeners and muxes, closed by Close
	// corks are the UDP mux's sockets, which subscribers' writers cork
	// around a burst (sendbatch.go); nil when sfu.send_batch is off.
	corks *corkSet

	mu     sync.Mutex
	rooms  map[string]*room
	closed bool

	speakerWG sync.WaitGroup // the rooms' speaker goroutines

	taps map[string][]*Tap // by room name: in-process track sinks (recordtap.go)

	// testBeforeWrite, if set before the first Join, runs in a
	// subscriber's writer before each packet (tests stall a subscriber).
	testBeforeWrite func(participantID string)
}

type room struct {
	name     string
	peers    map[string]*Peer
	tracks   map[string]*publishedTrack // by SID
	speakers *speakers
}

// New validates cfg, opens the UDP mux and (if TCPPort != 0) the ICE-TCP
// listener. Run it, or Close it to release them.
func New(cfg Config, deps Deps) (*SFU, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	s := &SFU{
		cfg:     cfg,
		log:     deps.Logger,
		m:       m,
		pionLog: logging.PionFactory(deps.Logger),
		rooms:   map[string]*room{},
	}
	n := deps.Net
	if n == nil {
		if n, err = newLiveNet(); err != nil {
			return nil, fmt.Errorf("sfu: network: %w", err)
		}
	}
	if err := s.buildSettings(n); err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

func (s *SFU) buildSettings(n transport.Net) error {
	cfg := s.cfg
	nets := cfg.parsedCIDRs()
	ipOK := func(ip net.IP) bool { return cfg.ipAllowed(nets, ip) }
	se := &webrtc.SettingEngine{LoggerFactory: s.pionLog}
	se.SetNet(n)
	se.SetInterfaceFilter(cfg.interfaceAllowed)
	se.SetIPFilter(ipOK)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// GCM first: about six times cheaper per packet than AES-CM + HMAC
	// on this hardware; the latter stays for clients without GCM.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)

	allowed := func(iface string, ip netip.Addr) bool {
		return (cfg.IncludeLoopback || !ip.IsLoopback()) && cfg.interfaceAllowed(iface) && ipOK(ip.AsSlice())
	}
	udpMux, err := newPortMux(cfg.UDPPort, n, allowed, s.log, newRateLogger(s.pionLog.NewLogger("udpmux"), s.m.iceLogSuppressed))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, udpMux)
	s.m.udpSockets.Store(&udpMux.corks)
	if cfg.SendBatch {
		s.corks = &udpMux.corks
	}
	se.SetICEUDPMux(udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}

	if cfg.TCPPort != 0 {
		var ip net.IP
		if cfg.BindAddress != "" {
			ip = net.ParseIP(cfg.BindAddress)
		}
		l, err := n.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: cfg.TCPPort})
		if err != nil {
			return fmt.Errorf("sfu: listen tcp port %d (sfu.tcp_port, 0 disables): %w", cfg.TCPPort, err)
		}
		// WriteBufferSize 0: a congested TCP connection blocks only its
		// subscriber's writer goroutine, so the SFU's own bounded queue
		// fills and drops with counted reasons and key-frame recovery,
		// instead of pion dropping silently inside a write buffer.
		guarded, err := newGuardedListener(l, cfg.TCPUnauthenticatedPerAddr, s.m)
		if err != nil {
			_ = l.Close()
			return err
		}
		tcpMux := ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:       guarded,
			Logger:         newRateLogger(s.pionLog.NewLogger("tcpmux"), s.m.iceLogSuppressed),
			ReadBufferSize: 512, // packets per connection: a video key frame burst
			// pion's defaults are 30 s each: a long time to hold a socket
			// for a client that is not speaking ICE.
			FirstStunBindTimeout:         cfg.TCPFirstSTUNTimeout,
			AliveDurationForConnFromStun: cfg.TCPFirstSTUNTimeout,
		})
		s.closers = append(s.closers, tcpMux, l)
		se.SetICETCPMux(tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)

	if len(cfg.PublicIPs) > 0 {
		ct := webrtc.ICECandidateTypeHost
		if cfg.NAT1To1CandidateType == "srflx" {
			ct = webrtc.ICECandidateTypeSrflx
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: cfg.PublicIPs, AsCandidateType: ct,
		}); err != nil {
			return fmt.Errorf("sfu: public_ips: %w", err)
		}
	}
	s.settings = se
	return nil
}

func (s *SFU) closeListeners() {
	for _, c := range s.closers {
		_ = c.Close()
	}
	s.closers = nil
}

// Run blocks until ctx ends, then shuts the SFU down as Close does. It
// returns after all goroutines the SFU started have exited.
func (s *SFU) Run(ctx context.Context) error {
	<-ctx.Done()
	return s.Close()
}

// Close closes every peer and the listeners New opened, and returns after
// the SFU's goroutines have exited. New opens the sockets (so a busy port
// fails at start, before anything runs); Close is how a caller that built
// the SFU but never ran it gives them back. Joins after Close fail with
// ErrClosed. It is safe to call more than once and after Run returned.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	taps := make([]*Tap, 0, len(s.taps))
	for _, room := range s.taps {
		taps = append(taps, room...)
	}
	var peers []*Peer
	for _, r := range s.rooms {
		for _, p := range r.peers {
			peers = append(peers, p)
		}
	}
	s.mu.Unlock()
	for _, tap := range taps {
		_ = tap.Close()
	}
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() { _ = p.Close() })
	}
	wg.Wait()
	// Rooms still held by in-process publishers stop their speaker
	// selection too.
	s.mu.Lock()
	for _, r := range s.rooms {
		r.speakers.close()
	}
	s.mu.Unlock()
	s.speakerWG.Wait()
	s.closeListeners()
	return nil
}

// Join adds a participant to a room (creating the room) and builds its
// PeerConnections: a publisher connection if opts.CanPublish, a
// subscriber connection if opts.CanSubscribe. A subscriber is subscribed
// at once to every track already in the room; the first subscriber offer
// arrives through opts.Events when there is something to receive.
func (s *SFU) Join(roomName, participantID string, opts JoinOptions) (*Peer, error) {
	if roomName == "" || participantID == "" {
		return nil, fmt.Errorf("sfu: join: room and participant id are required")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if r := s.rooms[roomName]; r != nil && r.peers[participantID] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("join %s as %s: %w", roomName, participantID, ErrParticipantExists)
	}
	s.mu.Unlock()

	p, err := newPeer(s, roomName, participantID, opts)
	if err != nil {
		return nil, fmt.Errorf("join %s as %s: %w", roomName, participantID, err)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.abort()
		return nil, ErrClosed
	}
	r := s.rooms[roomName]
	if r == nil {
		r = &room{name: roomName, peers: map[string]*Peer{}, tracks: map[string]*publishedTrack{}}
		s.rooms[roomName] = r
		s.m.rooms.Inc()
		s.startSpeakersLocked(r)
	}
	if r.peers[participantID] != nil {
		s.mu.Unlock()
		p.abort()
		return nil, fmt.Errorf("join %s as %s: %w", roomName, participantID, ErrParticipantExists)
	}
	r.peers[participantID] = p
	p.setActiveSpeaker(r.speakers.sel.Active()) // later changes: sendSpeakers
	s.m.participants.Inc()
	var existing []*publishedTrack
	for _, t := range r.tracks {
		existing = append(existing, t)
	}
	s.mu.Unlock()

	if opts.CanSubscribe {
		p.subscribe(existing...)
	}
	p.log.Info("participant joined", "publish", opts.CanPublish, "subscribe", opts.CanSubscribe)
	return p, nil
}

func (s *SFU) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// removePeer forgets p; the room goes when its last participant leaves.
func (s *SFU) removePeer(p *Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[p.room]
	if r == nil || r.peers[p.id] != p {
		return
	}
	delete(r.peers, p.id)
	s.m.participants.Dec()
	r.speakers.sel.Remove(p.id)
	if len(r.peers) == 0 && len(r.tracks) == 0 {
		delete(s.rooms, p.room)
		s.m.rooms.Dec()
		r.speakers.close()
	}
}

// addTrack registers a published track and returns the peers that should
// subscribe to it. ok is false when the room or publisher is gone.
func (s *SFU) addTrack(t *publishedTrack) (subscribers []*Peer, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	r := s.rooms[t.roomName]
	if r == nil && t.owner == nil { // in-process publisher opening a room
		r = &room{name: t.roomName, peers: map[string]*Peer{}, tracks: map[string]*publishedTrack{}}
		s.rooms[t.roomName] = r
		s.m.rooms.Inc()
		s.startSpeakersLocked(r)
	}
	if r == nil || t.owner != nil && r.peers[t.info.ParticipantID] != t.owner {
		return nil, false
	}
	r.tracks[t.info.SID] = t
	s.m.tracks.Inc()
	s.notifyTapLocked(t.roomName)
	for id, p := range r.peers {
		if id != t.info.ParticipantID && p.opts.CanSubscribe {
			subscribers = append(subscribers, p)
		}
	}
	return subscribers, true
}

// removeTrack unregisters t and returns the peers that may subscribe to it.
func (s *SFU) removeTrack(t *publishedTrack) []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[t.roomName]
	if r == nil || r.tracks[t.info.SID] != t {
		return nil
	}
	delete(r.tracks, t.info.SID)
	s.m.tracks.Dec()
	s.notifyTapLocked(t.roomName)
	var peers []*Peer
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	if len(r.peers) == 0 && len(r.tracks) == 0 {
		delete(s.rooms, t.roomName)
		s.m.rooms.Dec()
		r.speakers.close()
	}
	return peers
}

// Rooms lists the rooms that have participants or tracks, sorted.
func (s *SFU) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.rooms))
	for name := range s.rooms {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// RoomStats returns a snapshot of every track published in the room,
// sorted by participant and track id.
func (s *SFU) RoomStats(roomName string) []TrackStats {
	s.mu.Lock()
	var tracks []*publishedTrack
	if r := s.rooms[roomName]; r != nil {
		for _, t := range r.tracks {
			tracks = append(tracks, t)
		}
	}
	s.mu.Unlock()
	return statsOf(tracks)
}

func statsOf(tracks []*publishedTrack) []TrackStats {
	out := make([]TrackStats, 0, len(tracks))
	for _, t := range tracks {
		out = append(out, t.stats())
	}
	slices.SortFunc(out, func(a, b TrackStats) int {
		return cmp.Or(cmp.Compare(a.ParticipantID, b.ParticipantID), cmp.Compare(a.SID, b.SID))
	})
	return out
}

// newTrackSID returns "TR_" and 12 random base-32 characters.
func newTrackSID() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	var b [12]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return "TR_" + string(b[:])
}
