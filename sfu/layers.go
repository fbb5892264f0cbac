package sfu

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu/internal/keyframe"
	"github.com/parleyhq/parley/sfu/internal/packetcache"
	"github.com/parleyhq/parley/sfu/internal/rtpstats"
	"github.com/parleyhq/parley/sfu/internal/simulcast"
	"github.com/parleyhq/parley/sfu/internal/vp8"
)

// Simulcast receive: a publisher that sends several encodings of one video
// track (rids, one SSRC each) gets one publishedTrack with a trackLayer
// per encoding. Every layer's packets go to every subscriber's
// simulcast.Switcher, which picks one layer and numbers it into one
// continuous stream; the writer applies the Switcher's Mapping to its own
// copy of the packet from that layer's cache. Tracks with one encoding
// (OBS, WHIP, Firefox, older clients) keep the single-layer path of
// handlePacket and downTrack.forward, untouched.

// trackLayer is one simulcast layer of a published track: an independent
// RTP stream with its own SSRC, sequence numbers and cache.
type trackLayer struct {
	rid   string
	cache *packetcache.Cache
	ssrc  atomic.Uint32 // 0 until pion reported the layer
	pli   throttle
	// moved is set once the layer was reported on a second SSRC (logged
	// once: a sender may do it at every retransmission).
	moved atomic.Bool
	// Guarded by the track's statsMu: the receive statistics, and the
	// newest packet (to prime new subscribers' switchers).
	rx      *rtpstats.Receiver
	last    time.Time
	lastSeq uint16
	// lastMedia is the arrival of the newest packet with a payload.
	lastMedia time.Time
	// Received bytes and the bitrate of the track's last one-second
	// window (closed by countLocked), for the layer selection.
	bytes, winBytes uint64
	bitrate         float64
	// Frames completed (marker bits of new packets), for the debug line
	// of each window: how a layer dies (frames stop, packets drain) is
	// what a slow move off it is read from.
	frames, winFrames uint64
	// Repairs and probes: packets that were not new (retransmissions,
	// Chrome's RTX probes), bytes, for the same line.
	old, winOld uint64
	// The same per VP8 temporal layer (TID), for the packets that carry
	// one; tidBitrate[t] is the bitrate of TIDs 0..t together, all zero
	// for a layer without temporal layers.
	tidBytes, tidWin [simulcast.AllTemporal + 1]uint64
	tidBitrate       [simulcast.AllTemporal + 1]float64
}

// closeWindow ends the layer's bitrate window of el.
func (ly *trackLayer) closeWindow(el time.Duration) {
	ly.bitrate = float64(ly.bytes-ly.winBytes) * 8 / el.Seconds()
	ly.winBytes = ly.bytes
	var sum uint64
	for t := range ly.tidBytes {
		sum += ly.tidBytes[t] - ly.tidWin[t]
		ly.tidWin[t] = ly.tidBytes[t]
		ly.tidBitrate[t] = float64(sum) * 8 / el.Seconds()
	}
}

// webRIDs are the web client's rids, lowest quality first.
var webRIDs = []string{"q", "h", "f"} //nolint:gochecknoglobals // read-only table

// layerRIDs returns the rids of a simulcast receiver, lowest quality first:
// the web client's q/h/f in that order, any other naming in the order of
// the offer (browsers list encodings as the application gave them, and
// applications give them lowest first by convention). At most
// simulcast.MaxLayers are kept.
func layerRIDs(recv *webrtc.RTPReceiver) []string {
	var rids []string
	web := true
	for _, tr := range recv.Tracks() {
		if rid := tr.RID(); rid != "" && !slices.Contains(rids, rid) {
			rids = append(rids, rid)
			web = web && slices.Contains(webRIDs, rid)
		}
	}
	if web {
		slices.SortFunc(rids, func(a, b string) int {
			return slices.Index(webRIDs, a) - slices.Index(webRIDs, b)
		})
	}
	if len(rids) > simulcast.MaxLayers {
		rids = rids[:simulcast.MaxLayers]
	}
	return rids
}

// initLayers sets up the per-layer state of a simulcast track.
func (t *publishedTrack) initLayers(rids []string, size int) {
	t.layers = make([]*trackLayer, len(rids))
	for i, rid := range rids {
		t.layers[i] = &trackLayer{
			rid:   rid,
			cache: packetcache.New(size),
			pli:   throttle{interval: t.s.cfg.PLIInterval},
			rx:    rtpstats.NewReceiver(t.clockRate),
		}
	}
}

// simulcast reports whether t has several layers.
func (t *publishedTrack) simulcast() bool { return t.layers != nil }

// topLayer is a simulcast track's best layer.
func (t *publishedTrack) topLayer() simulcast.Layer { return simulcast.Layer(len(t.layers) - 1) }

// readLayerLoop is readLoop for one layer of a simulcast track.
func (t *publishedTrack) readLayerLoop(l simulcast.Layer, read func([]byte) (int, error)) {
	buf := make([]byte, packetcache.MaxPacketSize)
	var hdr rtp.Header
	for {
		n, err := read(buf)
		if err != nil {
			return
		}
		t.handleLayerPacket(l, buf[:n], &hdr, time.Now())
	}
}

// handleLayerPacket is handlePacket for one layer of a simulcast track:
// statistics, the layer's cache, one parse into a simulcast.Packet, and
// the offer to every subscriber's switcher.
func (t *publishedTrack) handleLayerPacket(l simulcast.Layer, pkt []byte, hdr *rtp.Header, now time.Time) {
	hl, err := hdr.Unmarshal(pkt)
	if err != nil || int(l) >= len(t.layers) {
		return
	}
	ly := t.layers[l]
	payload := pkt[hl:]
	if hdr.Padding && len(payload) > 0 {
		if pad := int(payload[len(payload)-1]); pad <= len(payload) {
			payload = payload[:len(payload)-pad]
		}
	}
	var d vp8.Descriptor
	isVP8 := t.codec == keyframe.VP8 && len(payload) > 0 && d.Unmarshal(payload) == nil
	t.statsMu.Lock()
	newest := ly.rx.Update(hdr.SequenceNumber, hdr.Timestamp, now)
	if newest {
		ly.last, ly.lastSeq = now, hdr.SequenceNumber
	}
	if len(payload) > 0 && newest {
		// Only new media counts towards what a subscriber of the layer
		// gets. Padding-only packets and repeats of packets already
		// received are Chrome's bandwidth probes (up to megabits a
		// second, on RTX with the payload of recent packets of its
		// lowest layer, which pion hands over as that layer's packets):
		// counted, they made the lowest layer look costlier than the
		// others (2.5 Mbit/s for 320x180 in lab scenario 1), and the
		// layer choice lowered subscribers with megabits to spare to
		// the lowest layer at a quarter of its frame rate.
		ly.bytes += uint64(len(pkt))
		ly.lastMedia = now
		if hdr.Marker {
			ly.frames++
		}
		if isVP8 && d.HasTID {
			ly.tidBytes[d.TID] += uint64(len(pkt))
		}
	}
	if !newest {
		ly.old += uint64(len(pkt))
	}
	t.countLocked(len(pkt), now)
	t.statsMu.Unlock()

	if t.ended.Load() || (!newest && ly.cache.Has(hdr.SequenceNumber)) {
		return // or a duplicate: see handlePacket
	}
	ly.cache.Put(hdr.SequenceNumber, pkt)
	sp := simulcast.Packet{Layer: l, Seq: hdr.SequenceNumber, Timestamp: hdr.Timestamp, Marker: hdr.Marker, Arrival: now}
	if len(payload) == 0 {
		// Padding only: Chrome probes bandwidth with these, also on a
		// layer it has stopped encoding (without RTX it pads on the
		// media SSRCs). Offered to the switchers they would keep a
		// stopped layer looking alive and its subscribers frozen.
		// Dropped here they leave a gap in the subscriber's numbering
		// that a NACK fills from the cache.
		return
	}
	if t.codec == keyframe.VP8 {
		if isVP8 {
			sp.SetVP8(&d)
		}
	} else {
		sp.Keyframe = keyframe.IsKeyframeStart(t.codec, payload)
	}
	if sp.Keyframe {
		// Key frames are a few a second at most: when one arrives, and
		// whether its first packet came late (a retransmission, which no
		// switcher takes to start a switch), is what a slow layer switch
		// is read from.
		t.log.Debug("layer key frame", "rid", ly.rid, "seq", hdr.SequenceNumber, "late", !newest)
	}
	muted := t.muted.Load()
	for _, d := range *t.downs.Load() {
		d.forwardLayer(&sp, muted)
	}
}

// requestLayerKeyframe sends a PLI for one layer unless one went out for
// it less than PLIInterval ago.
func (t *publishedTrack) requestLayerKeyframe(l simulcast.Layer) {
	if l < 0 || int(l) >= len(t.layers) || t.sendLayerPLI == nil {
		return
	}
	ly := t.layers[l]
	ssrc := ly.ssrc.Load()
	if ssrc == 0 || !ly.pli.allow(time.Now()) {
		return
	}
	if err := t.sendLayerPLI(ssrc); err != nil {
		t.log.Debug("send PLI", "rid", ly.rid, "err", err)
		return
	}
	t.plisOut.Add(1)
	t.s.m.plisOut.Inc()
	t.log.Debug("layer key frame requested", "rid", ly.rid)
}

// layerWatched reports whether a subscriber (or the recorder) that can
// receive now is forwarded layer l of t or waits to switch to it: only
// then is a loss on l worth a NACK to the publisher
// (nackgen.Tracker.SetWanted). In lab scenario 4 (an uplink capped at
// 500 kbit/s) the server NACKed 74-105 sequence numbers in the seconds
// after the cap, most of them of layers no one received: each answer is
// a full packet more on the capped link, which the layer the
// subscribers were about to move to needed.
func (t *publishedTrack) layerWatched(l simulcast.Layer) bool {
	for _, d := range *t.downs.Load() {
		if d.sw != nil && !d.layerIdle.Load() && (d.sw.Current() == l || d.sw.Target() == l) {
			return true
		}
	}
	return false
}

// newSwitcher is a subscriber's switcher for t, aimed at the best layer
// and told which layers are arriving.
func (t *publishedTrack) newSwitcher() *simulcast.Switcher {
	sw := simulcast.NewSwitcher(simulcast.Config{ClockRate: t.clockRate})
	sw.SetTarget(t.topLayer())
	t.statsMu.Lock()
	for i, ly := range t.layers {
		sw.Prime(simulcast.Layer(i), ly.lastSeq, ly.last)
	}
	t.statsMu.Unlock()
	return sw
}

// forwardLayer offers one packet of a simulcast track to this subscriber's
// switcher and queues it if the switcher forwards it. Runs on the layer's
// read loop; the layers' loops run concurrently, the switcher serialises.
func (d *downTrack) forwardLayer(p *simulcast.Packet, muted bool) {
	if !d.isSendable(muted) || !d.sub.subReady.Load() {
		// Nothing written now would reach the subscriber: let the
		// switcher see the packet, give its number back, ask for no key
		// frame, and start afresh once the subscriber can receive.
		d.sw.Dropped(d.sw.Push(p))
		d.layerIdle.Store(true)
		return
	}
	if d.layerIdle.Load() && d.layerIdle.CompareAndSwap(true, false) {
		d.sw.Resync() // and ask for the key frame now
	}
	r := d.sw.Push(p)
	if r.Keyframe != simulcast.None {
		d.src.requestLayerKeyframe(r.Keyframe)
	}
	if !r.Forward {
		return
	}
	if p.Keyframe {
		// Which key frame each subscriber got, to read a slow switch
		// against "layer key frame" (a few a second at most).
		d.src.log.Debug("layer key frame forwarded", "subscriber", d.sub.id, "layer", int(p.Layer), "seq", p.Seq)
	}
	if !d.q.push(outPacket{d: d, in: p.Seq, out: r.Seq, m: r.Map}) {
		d.sw.Dropped(r)
		d.src.drop(dropQueueFull)
	}
}

// tickLayers lets d's switcher ask for a key frame while no packet
// arrives (simulcast.Switcher.Tick: the layer forwarded went silent with
// all the others, or a switch waits on a layer that stopped). Switches
// otherwise act on arrivals only, so a publisher's silent uplink went
// without a request until a packet came. The subscriber's selectLoop
// calls it each round.
func (d *downTrack) tickLayers(now time.Time) {
	if d.sw == nil || d.layerIdle.Load() {
		return
	}
	if l := d.sw.Tick(now); l != simulcast.None {
		d.src.requestLayerKeyframe(l)
	}
}

// layerPLI asks the publisher for a key frame of the layer the subscriber
// receives (a pending switch asks for its own).
func (d *downTrack) layerPLI() {
	if l := d.sw.Current(); l != simulcast.None {
		d.src.requestLayerKeyframe(l)
	}
}

// SetLayer pins the simulcast layer this participant receives of a
// track it subscribes to, overriding the bandwidth-driven choice until
// the next SetView of the track: 0 is the lowest, higher values are
// clamped to the best layer, and -1 pauses the video. The switch happens at the next
// key frame of that layer (requested from the publisher); if the layer
// does not arrive the best one below it is sent. Tracks without simulcast
// ignore it.
func (p *Peer) SetLayer(trackSID string, layer int) error {
	d, err := p.downTrack(trackSID)
	if err != nil {
		return err
	}
	if d.sw == nil {
		return nil
	}
	l := d.src.topLayer()
	if layer < int(l) {
		l = simulcast.Layer(max(layer, int(simulcast.None)))
	}
	d.pinned.Store(true)
	d.sw.SetTarget(l)
	d.sw.SetCeiling(simulcast.MaxLayers - 1) // the estimate no longer bounds it
	d.sw.SetTemporal(simulcast.AllTemporal)  // every frame of it
	return nil
}

// Layer is the simulcast layer this participant receives of a track: -1
// while none is forwarded (waiting for a key frame, or paused), 0 for a
// track without simulcast.
func (p *Peer) Layer(trackSID string) (int, error) {
	d, err := p.downTrack(trackSID)
	if err != nil {
		return 0, err
	}
	if d.sw == nil {
		return 0, nil
	}
	return int(d.sw.Current()), nil
}

func (p *Peer) downTrack(trackSID string) (*downTrack, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.down[trackSID]
	if d == nil {
		return nil, ErrTrackNotFound
	}
	return d, nil
}

// logLayerWindow logs, at debug level, each layer's bitrate, frames, the
// age of its newest packet and the bitrate of its packets that were not
// new (repairs, probes) over the window of el just closed. The
// caller holds statsMu.
func (t *publishedTrack) logLayerWindow(now time.Time, el time.Duration) {
	args := make([]any, 0, 2*len(t.layers))
	for _, ly := range t.layers {
		age := time.Duration(-1)
		if !ly.last.IsZero() {
			age = now.Sub(ly.last).Round(time.Millisecond)
		}
		args = append(args, ly.rid, fmt.Sprintf("%.0fk %df %v old %.0fk", ly.bitrate/1000, ly.frames-ly.winFrames, age,
			float64(ly.old-ly.winOld)*8/el.Seconds()/1000))
		ly.winFrames, ly.winOld = ly.frames, ly.old
	}
	t.log.Debug("layer window", append(args, "window", el.Round(time.Millisecond))...)
}
