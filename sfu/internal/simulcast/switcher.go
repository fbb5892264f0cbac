package simulcast

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/sfu/internal/vp8"
)

// Layer indexes a published track's simulcast layers, lowest quality first
// (0 for rid q, 1 for h, 2 for f with the web client's rids). A track
// without simulcast has the single layer 0.
type Layer int8

// None means no layer: nothing is forwarded.
const None Layer = -1

// MaxLayers is the number of layers a Switcher can follow.
const MaxLayers = 4

// Defaults for Config's zero fields.
const (
	DefaultLayerTimeout     = 500 * time.Millisecond
	DefaultKeyframeInterval = 300 * time.Millisecond
)

// Config sets up a Switcher.
type Config struct {
	// ClockRate is the track's RTP clock (90000 for video); timestamps
	// after a switch advance by the wall-clock time since the last
	// forwarded packet in these units.
	ClockRate uint32
	// LayerTimeout is how long a layer may go without a packet before it
	// counts as gone and the switcher falls back to another one. The
	// default (500 ms) leaves time for a key frame to arrive so the move
	// is complete within a second; a low-frame-rate layer needs more.
	LayerTimeout time.Duration
	// KeyframeInterval is the least time between two key frame requests
	// for the same layer while a switch waits for one.
	KeyframeInterval time.Duration
}

// Packet is what the switcher needs of one received packet. The caller
// parses it once and offers the same Packet to every subscriber's
// switcher. Every packet of every layer must be offered: arrivals are
// how the switcher knows which layers are alive.
type Packet struct {
	Layer     Layer
	Seq       uint16
	Timestamp uint32
	Marker    bool
	// Keyframe marks the first packet of a key frame.
	Keyframe bool
	// Arrival is when the packet was received.
	Arrival time.Time

	HasPictureID bool
	PictureID    uint16 // 15 bits
	HasTL0PICIDX bool
	TL0PICIDX    uint8

	// The VP8 temporal layer (temporal.go): HasTID is false for a stream
	// without temporal layers (and for H.264), whose packets are never
	// dropped for their frame rate. FrameStart marks the first packet of
	// a frame, where the temporal layer may change.
	HasTID     bool
	TID        uint8
	LayerSync  bool
	FrameStart bool
}

// SetVP8 copies the VP8 fields the switcher rewrites from d, and its key
// frame flag.
func (p *Packet) SetVP8(d *vp8.Descriptor) {
	p.HasPictureID, p.PictureID = d.HasPictureID, d.PictureID
	p.HasTL0PICIDX, p.TL0PICIDX = d.HasTL0PICIDX, d.TL0PICIDX
	p.Keyframe = d.Keyframe
	p.HasTID, p.TID, p.LayerSync = d.HasTID, d.TID, d.LayerSync
	p.FrameStart = d.PartitionStart && d.PartitionID == 0
}

// Mapping turns a packet of one layer into the subscriber's stream: each
// field is added, modulo its width, to the packet's own value. A mapping
// holds from one switch to the next, so a retransmission is rewritten
// exactly like the original.
type Mapping struct {
	Layer          Layer
	SeqDelta       uint16
	TimestampDelta uint32
	PictureIDDelta uint16
	TL0PICIDXDelta uint8
}

// Seq is the subscriber's sequence number for in.
func (m Mapping) Seq(in uint16) uint16 { return in + m.SeqDelta }

// Timestamp is the subscriber's RTP timestamp for in.
func (m Mapping) Timestamp(in uint32) uint32 { return in + m.TimestampDelta }

// PictureID is the subscriber's 15-bit VP8 PictureID for in (vp8's
// Rewrite keeps only the low 7 bits for a 7-bit source).
func (m Mapping) PictureID(in uint16) uint16 { return (in + m.PictureIDDelta) & 0x7fff }

// TL0PICIDX is the subscriber's TL0PICIDX for in.
func (m Mapping) TL0PICIDX(in uint8) uint8 { return in + m.TL0PICIDXDelta }

// RewriteVP8 rewrites the PictureID and TL0PICIDX of payload, a VP8 RTP
// payload, in place. The writer calls it on its own copy of the packet,
// since every subscriber numbers differently. It reports false if the
// descriptor does not parse (the payload is then left as it is).
func (m Mapping) RewriteVP8(payload []byte) bool {
	var d vp8.Descriptor
	if d.Unmarshal(payload) != nil {
		return false
	}
	return d.Rewrite(payload, m.PictureID(d.PictureID), m.TL0PICIDX(d.TL0PICIDX))
}

// Result is the switcher's decision for one packet.
type Result struct {
	// Forward is true if the packet goes to the subscriber, under Seq
	// and rewritten by Map.
	Forward bool
	Seq     uint16
	Map     Mapping
	// Keyframe, unless None, is a layer to ask the publisher for a key
	// frame on now (already throttled per layer).
	Keyframe Layer
}

// out is the continuity state of the subscriber's stream: the newest
// packet sent.
type out struct {
	started bool
	seq     uint16
	ts      uint32
	arrival time.Time
	marker  bool
	hasPID  bool
	pid     uint16
	hasTL0  bool
	tl0     uint8
}

// epoch is one stretch of forwarding with one mapping: sequence numbers
// first..last of the subscriber's stream. Epochs follow each other
// without a gap, so the newest few cover the recent numbers. An epoch
// longer than half the sequence space keeps only its newest half, the
// most a NACK can refer to. A layer switch starts an epoch, and so do
// frames left out for their temporal layer (the numbers after them
// close up) and each change of the temporal layer forwarded.
type epoch struct {
	m           Mapping
	first, last uint16
	used        bool  // false until it covers a number
	tid         uint8 // the highest temporal layer forwarded in it
	// dead are numbers in it whose packet turned up late and was left
	// out for its temporal layer: a NACK for them gets no answer.
	dead  [4]uint16
	ndead uint8
}

const maxEpochSpan = 0x8000

// numEpochs is how many stretches Lookup remembers. Dropping a temporal
// layer starts an epoch every few frames (about 8 a second at 15 frames
// a second with every other frame dropped), so 64 keep several seconds
// of numbers answerable, longer than any NACK is worth answering.
const numEpochs = 64

// Switcher forwards one subscriber's view of one published video track:
// one layer at a time, switching only at a key frame of the layer it
// moves to, so the subscriber sees one continuous stream. Safe for
// concurrent use: each layer's read loop calls Push, the layer selector
// calls SetTarget, the RTCP reader calls Lookup.
//
// Frames and marker bits: a pause ends after the packet carrying the
// marker, so the subscriber's last frame is whole. A switch cannot wait
// for the old layer's frame to end (its packets interleave with the new
// layer's key frame), so an unfinished old frame is cut; the receiver
// drops it, since it never completes and the key frame that follows
// needs nothing before it. Timestamps after a switch advance by the
// wall-clock time since the last packet sent, so they never drift from
// real time however often the layer changes (which would upset the
// receiver's jitter buffer and lip sync).
type Switcher struct {
	mu  sync.Mutex
	cfg Config

	target Layer // what the selector asked for
	// hold: a switch down stops the current layer at its next frame's
	// end instead of forwarding it until the target's key frame
	// (SetHold).
	hold bool
	// ceiling bounds the fallback above target while target does not
	// arrive (SetCeiling; MaxLayers-1 unless set).
	ceiling Layer
	cur     Layer // what is being forwarded, None while waiting for a key frame
	first   uint16
	// since is the arrival of the key frame cur started at.
	since time.Time

	// m maps the newest packets of cur; open says the newest epoch is
	// under m and grows with them (false after a drop changed m or the
	// temporal layer changed, until the next number is covered).
	m    Mapping
	open bool
	tl   temporal
	// covered is the newest number in an epoch: the last packet sent's,
	// or later when numbers were kept for packets lost upstream.
	covered uint16

	last out  // the newest packet sent
	prev out  // before it, to undo a packet the caller could not send
	undo bool // last is the packet Push forwarded most recently

	seen    [MaxLayers]time.Time // last arrival per layer
	seenSeq [MaxLayers]uint16    // highest sequence number per layer
	asked   [MaxLayers]time.Time // last key frame request per layer
	// waitFor is the layer a switch waits for a key frame of (None if
	// none), since waitSince.
	waitFor   Layer
	waitSince time.Time

	epochs   [numEpochs]epoch
	epochIdx int // index of the newest epoch
	switches uint64
}

// NewSwitcher returns a switcher with target layer None.
func NewSwitcher(cfg Config) *Switcher {
	if cfg.LayerTimeout <= 0 {
		cfg.LayerTimeout = DefaultLayerTimeout
	}
	if cfg.KeyframeInterval <= 0 {
		cfg.KeyframeInterval = DefaultKeyframeInterval
	}
	return &Switcher{cfg: cfg, target: None, ceiling: MaxLayers - 1, cur: None, waitFor: None, tl: temporal{target: AllTemporal, cur: AllTemporal}}
}

// SetTarget sets the layer the subscriber should receive; None pauses
// (the current frame is finished, then nothing is sent). The switch
// itself happens at the target's next key frame; until then the current
// layer keeps flowing.
func (s *Switcher) SetTarget(l Layer) {
	if l < None || l >= MaxLayers {
		l = None
	}
	s.mu.Lock()
	s.target = l
	s.mu.Unlock()
}

// SetHold sets whether a switch to a lower layer holds the current
// layer back while it waits: with hold, the current layer's frame in
// flight is finished and nothing more of it is sent until the lower
// layer's key frame arrives. For a subscriber whose link just shrank:
// the current layer overflows the link's queue meanwhile, and the
// lower layer's key frame, queued behind it, is cut short there and
// must be asked for again (lab scenario 1: 2-10 s of frozen video at
// 300 kbit/s, where 0.3 s was the wait for the key frame). Without
// hold (the default) the picture goes on until the switch.
func (s *Switcher) SetHold(hold bool) {
	s.mu.Lock()
	s.hold = hold
	s.mu.Unlock()
}

// SetCeiling bounds the layers above the target that the switcher falls
// back to while the target does not arrive (and nothing below it does):
// a subscriber whose link would not carry them waits for its layer
// instead. MaxLayers-1 (the default) sets no bound.
func (s *Switcher) SetCeiling(l Layer) {
	s.mu.Lock()
	s.ceiling = min(max(l, 0), MaxLayers-1)
	s.mu.Unlock()
}

// Target is the layer last set by SetTarget.
func (s *Switcher) Target() Layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.target
}

// Current is the layer being forwarded, None if nothing is.
func (s *Switcher) Current() Layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// CurrentSince is Current and the arrival of the key frame the switcher
// started forwarding it at (when the subscriber moved to it), the zero
// time with None.
func (s *Switcher) CurrentSince() (Layer, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == None {
		return None, time.Time{}
	}
	return s.cur, s.since
}

// Switches counts the switches made (a start counts as one).
func (s *Switcher) Switches() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switches
}

// Resync stops forwarding until the next key frame of the target layer
// (for example after the subscriber reconnected or the track was muted).
// The subscriber's numbering continues without a gap. The key frame
// request throttle starts afresh, so the next Push or Tick asks at once:
// whatever was asked before went unanswered for this subscriber.
func (s *Switcher) Resync() {
	s.mu.Lock()
	s.cur = None
	s.asked = [MaxLayers]time.Time{}
	s.mu.Unlock()
}

// Prime tells a new switcher that layer l was arriving before it existed:
// its newest packet was seq, received at arrival. Without it a switcher
// created for a new subscriber of a running track believes only the
// first layer it sees is alive, starts there (asking for its key frame)
// and climbs to the target later. Prime does not move backwards in
// time or sequence.
func (s *Switcher) Prime(l Layer, seq uint16, arrival time.Time) {
	if l < 0 || l >= MaxLayers || arrival.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen[l].IsZero() && !arrival.After(s.seen[l]) {
		return
	}
	s.seen[l] = arrival
	s.seenSeq[l] = seq
}

// Dropped tells the switcher that the caller could not send a packet it
// was told to forward (its queue was full). If it was the newest packet
// and nothing was forwarded after it, its numbers are given back so the
// subscriber sees no gap, and forwarding resumes at the next key frame,
// since the frames after a lost packet would not decode. Otherwise the
// packet is left as a gap for the subscriber to NACK.
func (s *Switcher) Dropped(r Result) {
	if !r.Forward {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.epochs[s.epochIdx]
	if !s.undo || r.Seq != s.last.seq || r.Map != e.m || !e.used || e.last != r.Seq {
		return
	}
	s.undo = false
	if e.first == r.Seq {
		e.used = false
	} else {
		// Numbers before it left for packets lost upstream stay
		// covered: only r.Seq is given back.
		e.last = r.Seq - 1
	}
	s.covered = r.Seq - 1
	s.open = false
	s.last = s.prev
	s.cur = None
}

// Lookup maps a sequence number the subscriber NACKed back to the layer
// and sequence number it came from, and the mapping to rewrite the
// retransmission with. It also answers for packets lost upstream within
// a forwarding stretch, so the subscriber's NACK reaches the cache.
func (s *Switcher) Lookup(seq uint16) (l Layer, in uint16, m Mapping, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.started || s.last.seq-seq >= maxEpochSpan {
		return None, 0, Mapping{}, false // not sent yet, or too old to tell
	}
	covered := 0
	for i := 0; i < numEpochs && covered < maxEpochSpan; i++ {
		e := &s.epochs[(s.epochIdx-i+numEpochs)%numEpochs]
		if !e.used {
			continue
		}
		if seq-e.first <= e.last-e.first {
			if e.isDead(seq) {
				return None, 0, Mapping{}, false
			}
			return e.m.Layer, seq - e.m.SeqDelta, e.m, true
		}
		covered += int(e.last-e.first) + 1
	}
	return None, 0, Mapping{}, false
}

// Tick lets the switcher act when no packet arrives (the current layer
// stopped): it returns a layer to request a key frame on, or None. Call
// it periodically (the SFU does at each layer selection, every 500 ms).
//
// While every layer is silent it asks once for the lowest layer's key
// frame, then nothing until a layer arrives. A publisher's browser under
// a sudden uplink cap sends nothing at all for one to three seconds (its
// pacer holds what it encodes), then resumes with its lowest layer:
// asked only then, the key frame had to cross the capped uplink behind
// the held frames (0.4 s more of frozen picture, lab scenario 4); asked
// every few hundred milliseconds during the silence, each request put
// one more key frame in the held queue (six 320x180 key frames in 400
// ms after a 3 s silence). A publisher that has stopped sending is
// asked once.
func (s *Switcher) Tick(now time.Time) Layer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silent(now) {
		if s.asked[0].After(s.seen[s.cur]) {
			return None
		}
		s.asked[0] = now
		return 0
	}
	return s.keyframeRequest(s.effective(now), now)
}

// Push decides what to do with one packet. It never allocates.
func (s *Switcher) Push(p *Packet) Result {
	r := Result{Keyframe: None}
	if p.Layer < 0 || p.Layer >= MaxLayers {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	newest := s.seen[p.Layer].IsZero() || int16(p.Seq-s.seenSeq[p.Layer]) > 0
	prevSeq := s.seenSeq[p.Layer]
	s.seen[p.Layer] = p.Arrival
	if newest {
		s.seenSeq[p.Layer] = p.Seq
	}
	want := s.effective(p.Arrival)

	switch {
	case p.Layer == s.cur:
		s.forwardCurrent(p, newest, prevSeq, want, &r)
	case p.Layer == want && p.Keyframe && newest:
		s.switchTo(p)
		s.forward(p, &r)
	case p.Layer < want && p.Keyframe && newest && s.overdue(want, p.Arrival):
		// A stopgap: the subscriber's picture has stopped and the wanted
		// layer's key frame is overdue, but a lower layer's has come. A
		// browser that answers a key frame request encodes one on every
		// layer it sends, and on a capped uplink the wanted layer's may
		// be lost or never come (the browser is dropping that layer
		// too): in the lab (issue #10, scenario 4) subscribers waited
		// 0.7-1.1 s more for 640x360 while 320x180 key frames went by.
		// The key frame requests for the wanted layer go on, and its key
		// frame moves the subscriber up.
		s.switchTo(p)
		s.forward(p, &r)
	}
	r.Keyframe = s.keyframeRequest(want, p.Arrival)
	return r
}

// forwardCurrent handles a packet of the layer being forwarded; prevSeq
// is the highest sequence number of the layer seen before it.
func (s *Switcher) forwardCurrent(p *Packet, newest bool, prevSeq uint16, want Layer, r *Result) {
	if !newest {
		s.forwardLate(p, r)
		return
	}
	if (want == None || s.hold && want < s.cur) && s.last.marker {
		// Pausing, or holding the layer back for a lower one (SetHold):
		// the last frame is complete, stop here.
		s.cur = None
		return
	}
	if p.Seq != prevSeq+1 {
		// Packets lost upstream keep their numbers, under the mapping
		// of their time, so the subscriber's NACK for them maps back.
		s.cover(s.m.Seq(prevSeq+1), s.m.Seq(p.Seq-1))
	}
	if s.temporalDrop(p) {
		return
	}
	s.forward(p, r)
	if want == None && p.Marker {
		s.cur = None
	}
}

// switchTo starts a new epoch at p, the first packet of a key frame of
// the layer to forward, numbered to follow the last packet sent.
func (s *Switcher) switchTo(p *Packet) {
	m := Mapping{Layer: p.Layer}
	if s.last.started {
		// After the numbers kept for late packets of the old layer,
		// which may still be sent under them.
		m.SeqDelta = s.covered + 1 - p.Seq
		m.TimestampDelta = s.last.ts + s.ticksSince(p.Arrival) - p.Timestamp
		if s.last.hasPID && p.HasPictureID {
			m.PictureIDDelta = s.last.pid + 1 - p.PictureID
		}
		if s.last.hasTL0 && p.HasTL0PICIDX {
			// A key frame is a base-layer frame: the index moves on.
			m.TL0PICIDXDelta = s.last.tl0 + 1 - p.TL0PICIDX
		}
	}
	s.m, s.open = m, false
	s.cur = p.Layer
	s.first = p.Seq
	s.since = p.Arrival
	s.switches++
	s.tl.restart() // a key frame: every temporal layer decodes after it
}

// ticksSince is the wall-clock time from the last packet sent to now in
// RTP clock units, at least 1 so the new frame's timestamp is later.
func (s *Switcher) ticksSince(now time.Time) uint32 {
	d := now.Sub(s.last.arrival)
	if d <= 0 {
		return 1
	}
	rate := int64(s.cfg.ClockRate)
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	t := uint32(sec*rate + rem*rate/int64(time.Second))
	if t == 0 {
		t = 1
	}
	return t
}

// forward sends p, the newest packet of the current layer.
func (s *Switcher) forward(p *Packet, r *Result) {
	m := s.m
	s.prev = s.last
	s.undo = true
	l := &s.last
	l.started = true
	l.seq = m.Seq(p.Seq)
	l.ts = m.Timestamp(p.Timestamp)
	l.arrival = p.Arrival
	l.marker = p.Marker
	if p.HasPictureID {
		l.hasPID, l.pid = true, m.PictureID(p.PictureID)
	}
	if p.HasTL0PICIDX {
		l.hasTL0, l.tl0 = true, m.TL0PICIDX(p.TL0PICIDX)
	}
	s.cover(l.seq, l.seq)
	r.Forward, r.Seq, r.Map = true, l.seq, m
}

// cover makes the subscriber's numbers first..last (following the
// newest epoch's) part of an epoch under s.m: the newest one if it is
// open, else a new one.
func (s *Switcher) cover(first, last uint16) {
	e := &s.epochs[s.epochIdx]
	if !s.open || !e.used {
		s.epochIdx = (s.epochIdx + 1) % numEpochs
		e = &s.epochs[s.epochIdx]
		*e = epoch{m: s.m, first: first, used: true, tid: s.tl.cur}
		s.open = true
	}
	e.last = last
	s.covered = last
	if e.last-e.first >= maxEpochSpan {
		e.first = e.last - (maxEpochSpan - 1)
	}
}

// forwardLate handles a packet of the current layer older than the
// newest (reordered, or the publisher's retransmission): it goes out
// under the number kept for it, if any. Numbers are kept for packets
// not seen when later ones arrived; one already seen and left out for
// its temporal layer has none (its epoch's input range skips it). A
// frame never seen has its numbers and PictureID kept, so it is sent
// whatever its temporal layer: without it the receiver would wait for
// its PictureID until the next key frame. (If it refers to a frame left
// out it shows wrong once; rare: a whole frame lost upstream, repaired
// late, of a layer being left out.)
func (s *Switcher) forwardLate(p *Packet, r *Result) {
	if int16(p.Seq-s.first) < 0 {
		return // sent before the switch to this layer: not ours to map
	}
	for i := range numEpochs {
		e := &s.epochs[(s.epochIdx-i+numEpochs)%numEpochs]
		if !e.used || e.m.Layer != s.cur {
			return
		}
		in := e.first - e.m.SeqDelta
		if p.Seq-in > e.last-e.first {
			if int16(p.Seq-in) > 0 {
				return // between two epochs: a packet left out
			}
			continue
		}
		out := e.m.Seq(p.Seq)
		if p.HasTID && p.TID > e.tid && (!p.HasPictureID || s.tl.wasLeftOut(p.PictureID)) {
			// Its frame is left out: the number stays a gap, and a
			// NACK for it is not answered with this packet.
			e.markDead(out)
			return
		}
		r.Forward, r.Seq, r.Map = true, out, e.m
		// It may fill a number between prev and last: last can no
		// longer be given back without reusing it.
		s.undo = false
		return
	}
}

// effective is the layer to move to: the target if it is arriving, else
// the best arriving layer below it, else the lowest arriving one above
// it up to the ceiling (a picture beats a frozen tile, where the link
// carries it; the selector will correct the choice from the layers'
// bitrates). If nothing arrives, the target.
func (s *Switcher) effective(now time.Time) Layer {
	if s.target == None {
		return None
	}
	for l := s.target; l >= 0; l-- {
		if s.alive(l, now) {
			return l
		}
	}
	for l := s.target + 1; l <= s.ceiling; l++ {
		if s.alive(l, now) {
			return l
		}
	}
	return s.target
}

// silent reports whether the layer forwarded and every other layer have
// stopped arriving (with a target: a paused subscriber asks for nothing).
func (s *Switcher) silent(now time.Time) bool {
	if s.cur == None || s.target == None {
		return false
	}
	for l := range Layer(MaxLayers) {
		if s.alive(l, now) {
			return false
		}
	}
	return true
}

func (s *Switcher) alive(l Layer, now time.Time) bool {
	t := s.seen[l]
	return !t.IsZero() && now.Sub(t) < s.cfg.LayerTimeout
}

// overdue reports whether the subscriber's picture has stopped (the
// layer forwarded went silent, or none is) and a switch has waited
// longer than KeyframeInterval for want's key frame: so long that a key
// frame answering the request went by without one of want, or was lost.
// A picture stopped by its layer going silent is overdue KeyframeInterval
// after the silence counted, whichever layer is wanted now: on a
// shrinking uplink the wanted layer changes as layers come and go, and
// timed from the newest change a 320x180 key frame 1.4 s into a frozen
// picture was taken with 5 ms to spare, or the picture waited for the
// next one a second later (lab scenario 4).
func (s *Switcher) overdue(want Layer, now time.Time) bool {
	if s.cur != None {
		if s.alive(s.cur, now) {
			return false
		}
		if now.Sub(s.seen[s.cur]) >= s.cfg.LayerTimeout+s.cfg.KeyframeInterval {
			return true
		}
	}
	return s.waitFor == want && now.Sub(s.waitSince) >= s.cfg.KeyframeInterval
}

// keyframeRequest returns want if a switch to it waits for a key frame
// and no request for it went out within KeyframeInterval.
func (s *Switcher) keyframeRequest(want Layer, now time.Time) Layer {
	if want == None || want == s.cur {
		s.waitFor = None
		return None
	}
	if s.waitFor != want {
		s.waitFor, s.waitSince = want, now
	}
	if a := s.asked[want]; !a.IsZero() && now.Sub(a) < s.cfg.KeyframeInterval {
		return None
	}
	s.asked[want] = now
	return want
}
