package sfu

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu/internal/audiolevel"
	"github.com/parleyhq/parley/sfu/internal/keyframe"
	"github.com/parleyhq/parley/sfu/internal/nackgen"
	"github.com/parleyhq/parley/sfu/internal/packetcache"
	"github.com/parleyhq/parley/sfu/internal/red"
	"github.com/parleyhq/parley/sfu/internal/rtpstats"
	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// publishedTrack is one incoming track: its read loop, packet cache,
// statistics and the list of downTracks (one per subscriber) it feeds.
//
// The source is a function, not a *webrtc.TrackRemote, so a later
// in-process publisher (RTMP/WHIP ingest) can feed packets the same way:
// it supplies read (raw RTP packets) and keyframe (ask the encoder for an
// IDR), and owner may be nil.
type publishedTrack struct {
	s        *SFU
	owner    *Peer
	roomName string
	info     TrackInfo
	log      *slog.Logger

	codec     keyframe.Codec
	fmtp      string // publisher's negotiated fmtp, to pick the same H.264 profile downstream
	video     bool
	clockRate uint32
	cache     *packetcache.Cache // nil for a simulcast track (see layers)

	sendPLI func() error // asks the publisher for a key frame
	pli     throttle

	// Simulcast tracks only (nil otherwise): the layers, lowest first,
	// and how to ask for a key frame on one of them.
	layers       []*trackLayer
	dyn          dynacast // which layers the publisher is asked to send
	sendLayerPLI func(ssrc uint32) error

	// RED (audio/red) publishers only: the Opus stream unwrapped from
	// it, for subscribers without RED, kept in a cache of its own under
	// the publisher's sequence numbers (see red.Unwrapper). The
	// unwrapper, its output slice and scratch are the read loop's.
	red        bool
	opusCache  *packetcache.Cache
	unwrapper  red.Unwrapper
	unwrapIdle bool // the last packet was not unwrapped
	unwrapped  []red.Packet
	scratch    []byte

	// Audio level of each packet (RFC 6464 extension id levelID, 0 if not
	// negotiated), fed to the room's speaker selection. level is nil
	// without one (in-process publishers, video).
	level   *audiolevel.Source
	levelID uint8

	downs atomic.Pointer[[]*downTrack] // copy-on-write, read per packet
	dmu   sync.Mutex                   // serialises writers of downs
	ended atomic.Bool
	muted atomic.Bool
	// screen: signaling declared the track a screen share (priority.go).
	screen atomic.Bool

	statsMu     sync.Mutex
	rx          *rtpstats.Receiver
	packets     uint64
	bytes       uint64
	lastPacket  time.Time
	winStart    time.Time
	winBytes    uint64
	bitrate     float64
	nacksIn     atomic.Uint64
	nacksOut    atomic.Uint64
	retransmits atomic.Uint64
	rtxOut      atomic.Uint64 // retransmissions sent on subscribers' RTX streams
	rtxIn       atomic.Uint64 // packets the publisher sent on its RTX stream
	plisIn      atomic.Uint64
	plisOut     atomic.Uint64
	drops       [numDropReasons]atomic.Uint64
}

type trackParams struct {
	owner     *Peer
	room      string
	info      TrackInfo
	clockRate uint32
	fmtp      string
	sendPLI   func() error
	// rids makes a simulcast track with one layer per rid, lowest
	// first; sendLayerPLI asks for a key frame on one layer's SSRC.
	rids         []string
	sendLayerPLI func(ssrc uint32) error
	// levelID is the negotiated audio-level extension id (0: none).
	levelID uint8
}

func newPublishedTrack(s *SFU, p trackParams) *publishedTrack {
	size := s.cfg.PacketCacheSize
	if p.info.Kind == "audio" {
		size = s.cfg.AudioCacheSize
	}
	t := &publishedTrack{
		s:         s,
		owner:     p.owner,
		roomName:  p.room,
		info:      p.info,
		log:       s.log.With("room", p.room, "participant", p.info.ParticipantID, "track", p.info.SID),
		codec:     keyframe.FromMime(p.info.Codec),
		fmtp:      p.fmtp,
		video:     p.info.Kind == "video",
		clockRate: p.clockRate,
		sendPLI:   p.sendPLI,
		pli:       throttle{interval: s.cfg.PLIInterval},
		rx:        rtpstats.NewReceiver(p.clockRate),
	}
	if len(p.rids) > 1 && t.video {
		// Every layer has its own cache; the track's stays nil.
		t.sendLayerPLI = p.sendLayerPLI
		t.initLayers(p.rids, size)
	} else {
		t.cache = packetcache.New(size)
	}
	if isRED(p.info.Codec) {
		t.red = true
		t.opusCache = packetcache.New(size)
		t.unwrapped = make([]red.Packet, 0, red.MaxRecover+1)
		t.scratch = make([]byte, packetcache.MaxPacketSize)
	}
	t.levelID = p.levelID
	t.downs.Store(&[]*downTrack{})
	return t
}

// readRemote reads a publisher's track (or one simulcast layer) for
// readLoop and readLayerLoop. When the publisher negotiated rtx, pion's
// RTPReceiver reads the RTX stream itself and hands its packets out
// through the same Read, already unwrapped to the media SSRC, payload
// type and original sequence number (RFC 4588) and marked with an
// attribute: they are counted here and otherwise take the media path, so
// a retransmission fills the gap in the cache and reaches every
// subscriber. nack (nil: no NACKs for this stream) hears of every
// packet, repairs included, so that a repair stops its NACKs.
func (t *publishedTrack) readRemote(remote *webrtc.TrackRemote, nack *nackgen.Tracker) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		n, a, err := remote.Read(b)
		if err != nil {
			return n, err
		}
		if a.Get(webrtc.AttributeRtxSsrc) != nil {
			t.rtxIn.Add(1)
			t.s.m.rtxIn.Inc()
		}
		if nack != nil {
			feedNACKs(nack, b[:n], time.Now())
		}
		return n, nil
	}
}

// feedNACKs tells a NACK tracker that pkt was read.
func feedNACKs(nack *nackgen.Tracker, pkt []byte, now time.Time) {
	if len(pkt) >= rtpHeaderLen {
		nack.Push(binary.BigEndian.Uint16(pkt[2:4]), now)
	}
}

// rtpHeaderLen is the fixed part of an RTP header.
const rtpHeaderLen = 12

// readLoop reads packets until read fails (the track ended), handing each
// to handlePacket. It owns buf and hdr, so the loop does not allocate.
func (t *publishedTrack) readLoop(read func([]byte) (int, error)) {
	buf := make([]byte, packetcache.MaxPacketSize)
	var hdr rtp.Header
	for {
		n, err := read(buf)
		if err != nil {
			return
		}
		t.handlePacket(buf[:n], &hdr, time.Now())
	}
}

// handlePacket is the per-packet hot path: statistics, cache, fan-out.
func (t *publishedTrack) handlePacket(pkt []byte, hdr *rtp.Header, now time.Time) {
	hl, err := hdr.Unmarshal(pkt)
	if err != nil {
		return
	}
	t.statsMu.Lock()
	newest := t.rx.Update(hdr.SequenceNumber, hdr.Timestamp, now)
	t.countLocked(len(pkt), now)
	t.statsMu.Unlock()

	if t.ended.Load() || (t.video && !newest && t.cache.Has(hdr.SequenceNumber)) {
		// Or a video packet already forwarded: a browser that
		// negotiated RTX probes bandwidth by resending recent packets on
		// its RTX stream, which give the subscribers nothing new.
		return
	}
	muted := t.muted.Load()
	if t.level != nil && !muted {
		if lvl, _, ok := audiolevel.Read(hdr, t.levelID); ok {
			// The room's clock is time.Now too.
			t.level.ObserveRTP(now, hdr.SSRC, hdr.Timestamp, t.clockRate, lvl)
		}
	}
	t.cache.Put(hdr.SequenceNumber, pkt)
	key := t.video && newest && keyframe.IsKeyframeStart(t.codec, pkt[hl:])
	downs := *t.downs.Load()
	var opus []red.Packet
	if t.red {
		opus = t.unwrapFor(downs, hdr, pkt[hl:])
	}
	for _, d := range downs {
		if t.red && d.wantsOpus() {
			for _, o := range opus {
				d.forward(o.Seq, newest, false, muted)
			}
			continue
		}
		d.forward(hdr.SequenceNumber, newest, key, muted)
	}
}

// unwrapFor unwraps a RED packet when a subscriber wants Opus. The
// unwrapper starts afresh after packets no one needed, so that the
// skipped ones are not taken for losses.
func (t *publishedTrack) unwrapFor(downs []*downTrack, hdr *rtp.Header, payload []byte) []red.Packet {
	for _, d := range downs {
		if d.wantsOpus() {
			if t.unwrapIdle {
				t.unwrapper, t.unwrapIdle = red.Unwrapper{}, false
			}
			return t.unwrap(hdr, payload)
		}
	}
	t.unwrapIdle = true
	return nil
}

// unwrap turns one RED packet into the Opus packets subscribers without
// RED get (recovered frames first, then the primary) and puts them in
// opusCache under their sequence numbers. Padding is dropped with the
// rest of the RED framing.
func (t *publishedTrack) unwrap(hdr *rtp.Header, payload []byte) []red.Packet {
	if hdr.Padding && len(payload) > 0 {
		pad := int(payload[len(payload)-1])
		if pad == 0 || pad > len(payload) {
			return nil
		}
		payload = payload[:len(payload)-pad]
	}
	before := t.unwrapper.Recovered
	out, err := t.unwrapper.Unwrap(t.unwrapped[:0], hdr.SequenceNumber, hdr.Timestamp, payload)
	if err != nil {
		return nil
	}
	h := rtp.Header{Version: 2, SSRC: hdr.SSRC, CSRC: hdr.CSRC}
	for _, o := range out {
		h.SequenceNumber, h.Timestamp, h.PayloadType = o.Seq, o.Timestamp, o.PT
		// The marker (start of a talk spurt) belongs to the primary.
		h.Marker = hdr.Marker && !o.Recovered
		n, err := h.MarshalTo(t.scratch)
		if err != nil || n+len(o.Payload) > len(t.scratch) {
			continue
		}
		n += copy(t.scratch[n:], o.Payload)
		t.opusCache.Put(o.Seq, t.scratch[:n])
	}
	if r := t.unwrapper.Recovered - before; r > 0 {
		t.s.m.redRecovered.Add(float64(r))
	}
	t.s.m.redUnwrapped.Inc()
	return out
}

// countLocked adds one received packet of n bytes to the track's
// counters and closes the bitrate and loss window every second. The
// caller holds statsMu.
func (t *publishedTrack) countLocked(n int, now time.Time) {
	t.packets++
	t.bytes += uint64(n)
	t.lastPacket = now
	if t.winStart.IsZero() {
		t.winStart, t.winBytes = now, t.bytes
	} else if el := now.Sub(t.winStart); el >= time.Second {
		t.bitrate = float64(t.bytes-t.winBytes) * 8 / el.Seconds()
		t.rx.CloseInterval()
		for _, ly := range t.layers {
			ly.rx.CloseInterval()
			ly.closeWindow(el)
		}
		if t.layers != nil && t.log.Enabled(context.Background(), slog.LevelDebug) {
			t.logLayerWindow(now, el)
		}
		t.winStart, t.winBytes = now, t.bytes
	}
}

// requestKeyframe sends a PLI upstream unless one went out less than
// PLIInterval ago: a key frame costs the publisher a lot of bits, and one
// answers every subscriber that asked.
func (t *publishedTrack) requestKeyframe() {
	if !t.video || t.sendPLI == nil || !t.pli.allow(time.Now()) {
		return
	}
	if err := t.sendPLI(); err != nil {
		t.log.Debug("send PLI", "err", err)
		return
	}
	t.plisOut.Add(1)
	t.s.m.plisOut.Inc()
}

func (t *publishedTrack) drop(r dropReason) {
	t.drops[r].Add(1)
	t.s.m.drops[r].Inc()
}

func (t *publishedTrack) addDown(d *downTrack) bool {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	if t.ended.Load() {
		return false
	}
	old := *t.downs.Load()
	next := make([]*downTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	t.downs.Store(&next)
	return true
}

func (t *publishedTrack) removeDown(d *downTrack) {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	old := *t.downs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	t.downs.Store(&next)
}

// setMuted stops or resumes forwarding. Video resumes at a key frame.
func (t *publishedTrack) setMuted(muted bool) {
	if t.muted.Swap(muted) == muted {
		return
	}
	if muted {
		if t.level != nil {
			// Its levels are ignored from now on: the participant
			// stops speaking at once (audiolevel.Source.Mute).
			t.level.Mute()
		}
		return
	}
	if t.simulcast() {
		// The switchers ask for the key frames they need.
		for _, ly := range t.layers {
			ly.pli.reset()
		}
		for _, d := range *t.downs.Load() {
			d.sw.Resync()
		}
		return
	}
	if t.video {
		for _, d := range *t.downs.Load() {
			d.needKeyframe.Store(true)
		}
		t.pli.reset()
		t.requestKeyframe()
	}
}

// end unpublishes the track once: subscribers drop it and renegotiate,
// and the owner hears TrackUnpublished. The read loop keeps draining the
// receiver (forwarding nothing) until the publisher's connection removes it.
func (t *publishedTrack) end() {
	t.dmu.Lock()
	if t.ended.Swap(true) {
		t.dmu.Unlock()
		return
	}
	t.dmu.Unlock()
	for _, p := range t.s.removeTrack(t) {
		p.unsubscribe(t)
	}
	if t.owner != nil {
		t.owner.forgetTrack(t)
		t.owner.events.TrackUnpublished(t.info)
	}
	t.log.Info("track unpublished")
}

func (t *publishedTrack) stats() TrackStats {
	t.statsMu.Lock()
	st := TrackStats{
		TrackInfo:      t.info,
		Packets:        t.packets,
		Bytes:          t.bytes,
		BitrateBps:     t.bitrate,
		PacketsLost:    t.rx.Lost(),
		FractionLost:   t.rx.FractionLost(),
		JitterMs:       t.rx.JitterMs(),
		LastPacketTime: t.lastPacket,
	}
	for _, ly := range t.layers {
		// One figure for all layers: lost packets add up, the worst
		// layer's loss and jitter stand for the track.
		st.PacketsLost += ly.rx.Lost()
		st.FractionLost = max(st.FractionLost, ly.rx.FractionLost())
		st.JitterMs = max(st.JitterMs, ly.rx.JitterMs())
		st.Layers = append(st.Layers, LayerStats{RID: ly.rid, BitrateBps: ly.bitrate, LastMediaTime: ly.lastMedia})
	}
	t.statsMu.Unlock()
	st.NACKsReceived = t.nacksIn.Load()
	st.NACKsSent = t.nacksOut.Load()
	st.Retransmits = t.retransmits.Load()
	st.RTXSent = t.rtxOut.Load()
	st.RTXReceived = t.rtxIn.Load()
	st.PLIsReceived = t.plisIn.Load()
	st.PLIsSent = t.plisOut.Load()
	downs := *t.downs.Load()
	st.Subscribers = len(downs)
	for _, d := range downs {
		if d.sub == nil || d.sub.id == "recorder" {
			continue // the recorder's tap is not a participant
		}
		r := ReceiverStats{ParticipantID: d.sub.id,
			PacketsSent: d.tx.packets.Load(), BytesSent: d.tx.bytes.Load(),
			RTXPacketsSent: d.tx.rtxPackets.Load(), RTXBytesSent: d.tx.rtxBytes.Load()}
		if est := d.sub.EstimatedBitrate(); est < math.MaxInt32 {
			r.EstimatedBps = est
		}
		r.Probing = d.sub.probing.Load()
		if v := d.view.Load(); v != nil {
			view := *v // a copy: the stats are the caller's
			r.View = &view
		}
		r.Temporal = -1 // every frame, unless the switcher leaves some out
		if d.sw != nil {
			if l, since := d.sw.CurrentSince(); l != simulcast.None && int(l) < len(t.layers) {
				r.Layer, r.LayerSince = t.layers[l].rid, since
			}
			if tl := d.sw.Temporal(); tl < simulcast.AllTemporal && r.Layer != "" {
				r.Temporal = int(tl)
			}
		}
		st.Receivers = append(st.Receivers, r)
	}
	st.Muted = t.muted.Load()
	st.Drops = make(map[string]uint64, numDropReasons)
	for i, r := range dropReasons {
		st.Drops[r] = t.drops[i].Load()
	}
	return st
}

// kindString maps pion's codec type to TrackInfo.Kind.
func kindString(k webrtc.RTPCodecType) string {
	if k == webrtc.RTPCodecTypeVideo {
		return "video"
	}
	return "audio"
}

// throttle admits at most one event per interval.
type throttle struct {
	mu       sync.Mutex
	interval time.Duration
	last     time.Time
}

func (th *throttle) allow(now time.Time) bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	if !th.last.IsZero() && now.Sub(th.last) < th.interval {
		return false
	}
	th.last = now
	return true
}

// reset lets the next request through at once (used when a muted track
// resumes: the subscribers need a key frame now, not in 500 ms).
func (th *throttle) reset() {
	th.mu.Lock()
	th.last = time.Time{}
	th.mu.Unlock()
}
