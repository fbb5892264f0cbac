package simulcast

import "time"

// Temporal layers: a VP8 encoder with temporal scalability (Chrome's
// simulcast layers carry three, L1T3) tags each frame with a temporal
// layer index TID. Base frames (TID 0) refer only to base frames, TID 1
// frames to TID 0 and 1, TID 2 frames to all. Leaving out every frame
// above some TID halves or quarters the frame rate and the bitrate of a
// layer without a key frame, so a subscriber short of bandwidth can keep
// a moving picture of every camera instead of a frozen one.
//
// Leaving frames out must not show as loss: the numbers after a left-out
// packet close up (a new epoch under a smaller SeqDelta) and PictureIDs
// close up per left-out frame, so the receiver's reference finder sees
// no missing picture. TL0PICIDX counts base frames, which are never left
// out, so it needs no change.
//
// Going down is safe at any frame start: the frames that remain refer
// only to frames the subscriber got. It goes one layer at a time (see
// TemporalStepDown), except at a key frame. Going up is not: a TID 1 frame may
// refer to the previous TID 1 frame (libwebrtc's pattern updates the
// golden buffer on TID 1 and refers to it from the next one), which the
// subscriber never received. It is safe at a key frame, or at a frame of
// TID cur+1 with the layer sync bit Y (it refers only to base frames,
// RFC 7741), one layer at a time: a Y frame of TID 2 while TID 1 frames
// are still left out would let through later TID 1 frames that refer to
// golden frames never sent. A TID 0 frame is not a safe point in
// general: the TID 1 frame after it may still refer to the last TID 1
// frame. In libwebrtc's three-layer pattern (0, 2Y, 1Y, 2, 0, ...) both
// sync frames follow every base frame, so climbing from 0 to 2 takes at
// most two cycles of four frames.

// AllTemporal is the temporal target that leaves nothing out (a TID has
// two bits, so no frame is above it).
const AllTemporal uint8 = 3

// TemporalStepDown is the least time between two steps down in frame
// rate. Going down one temporal layer at a time keeps the receiver from
// counting the change as a freeze: Chrome counts a frame interval above
// max(3 x average, average + 150 ms), averaged over 30 frames, and from
// 15 fps straight to a quarter (66 ms to 266 ms) the next 7 or so
// frames count, about 2 s of "freezes"; halving (133 ms) counts none,
// nor does halving again once the average has moved up (about 1.5 s).
const TemporalStepDown = 2 * time.Second

// temporal is a Switcher's temporal layer state.
type temporal struct {
	target uint8 // the highest TID the selector wants forwarded
	cur    uint8 // the highest TID forwarded now
	// dropPID is the PictureID of the last frame left out (valid if
	// dropped): its further packets do not close up the PictureIDs again.
	dropPID uint16
	dropped bool
	// gone are the PictureIDs of the last frames left out (n of them so
	// far, at most len(gone)): a late packet of one of them is left out
	// too, while a late packet of a frame never seen fills the numbers
	// kept for it, whatever its layer.
	gone [8]uint16
	n    int
	// top is the highest TID seen since the last key frame switch, so
	// that a step down from AllTemporal leaves something out; downAt is
	// when cur last went down.
	top    uint8
	downAt time.Time
}

func (t *temporal) leftOut(pid uint16) {
	t.gone[t.n%len(t.gone)] = pid
	t.n++
}

func (t *temporal) wasLeftOut(pid uint16) bool {
	for _, g := range t.gone[:min(t.n, len(t.gone))] {
		if g == pid {
			return true
		}
	}
	return false
}

// restart is called at a key frame of a newly forwarded layer: every
// layer decodes after it.
func (t *temporal) restart() {
	t.cur = t.target
	t.dropped, t.n = false, 0
	t.top, t.downAt = 0, time.Time{}
}

// SetTemporal sets the highest temporal layer (TID) the subscriber should
// receive; AllTemporal (or more) leaves nothing out. Going down takes
// effect at the next frame; going up at the next frame the subscriber can
// decode (see above). Streams without temporal layers ignore it.
func (s *Switcher) SetTemporal(tid uint8) {
	s.mu.Lock()
	s.tl.target = min(tid, AllTemporal)
	s.mu.Unlock()
}

// TemporalTarget is the temporal layer last set by SetTemporal.
func (s *Switcher) TemporalTarget() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tl.target
}

// Temporal is the highest temporal layer being forwarded (AllTemporal
// when nothing is left out).
func (s *Switcher) Temporal() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tl.cur
}

// temporalDrop moves the temporal layer at a frame start and reports
// whether p, the newest packet of the current layer, is left out. If it
// is, the mapping closes up over it.
func (s *Switcher) temporalDrop(p *Packet) bool {
	t := &s.tl
	if !p.HasTID {
		return false
	}
	t.top = max(t.top, p.TID)
	if p.FrameStart && t.cur != t.target {
		next := t.cur
		switch {
		case p.Keyframe:
			next = t.target
		case t.target < t.cur:
			// One layer at a time (see TemporalStepDown), and a step
			// from AllTemporal is one below the top layer seen.
			if t.downAt.IsZero() || p.Arrival.Sub(t.downAt) >= TemporalStepDown {
				next = max(t.target, min(t.cur, t.top)-1)
				if min(t.cur, t.top) == 0 {
					next = t.target
				}
			}
		case p.LayerSync && p.TID == t.cur+1:
			next = p.TID
		}
		if next < t.cur {
			t.downAt = p.Arrival
		}
		if next != t.cur {
			// A new epoch, so that a late packet is judged by the
			// layer of its time.
			t.cur, s.open = next, false
		}
	}
	if p.TID <= t.cur {
		return false
	}
	s.m.SeqDelta--
	if p.HasPictureID && (!t.dropped || p.PictureID != t.dropPID) {
		s.m.PictureIDDelta--
		t.dropPID, t.dropped = p.PictureID, true
		t.leftOut(p.PictureID)
	}
	s.open = false
	return true
}

// markDead records out, a number in e whose packet was left out late.
// Beyond the few slots, a NACK for such a number is answered with the
// left-out packet: a partial frame the receiver cannot complete and
// discards.
func (e *epoch) markDead(out uint16) {
	if int(e.ndead) < len(e.dead) {
		e.dead[e.ndead] = out
		e.ndead++
	}
}

func (e *epoch) isDead(out uint16) bool {
	for _, d := range e.dead[:e.ndead] {
		if d == out {
			return true
		}
	}
	return false
}
