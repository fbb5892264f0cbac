package sfu

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// Dynacast: a simulcast publisher encodes and uploads every layer even
// when nobody receives it, which on a phone or a thin uplink costs
// battery and the bandwidth its lower layers need. The SFU tells the
// publisher which layers some subscriber wants (the highest target of
// any subscriber's switcher, and everything below it); the client pauses
// the rest (RTCRtpEncodingParameters.active) and resumes them when a
// subscriber's target rises again. The lowest layer is never paused, so
// a new subscriber always has a picture to start with.
//
// Raising is immediate: the subscriber waits for the resumed layer's
// first key frame (the switcher keeps the best lower layer meanwhile).
// Lowering waits until the lower need has held for dynacastHold, so a
// tile that shrinks for a moment, or a subscriber that leaves and comes
// back, does not make the encoder stop and start.

// LayerEvents is implemented by PeerEvents that can ask a publisher to
// pause or resume its simulcast layers.
type LayerEvents interface {
	// ActiveLayers tells the publisher of t to send the layers rids
	// (lowest first) and pause the others.
	ActiveLayers(t TrackInfo, rids []string)
}

const dynacastHold = 3 * time.Second

// dynacastSilent: when every active layer above the need came and then
// has sent nothing for this long (the layer selection's own "not arriving"), they
// are paused at once, without dynacastHold. A publisher whose uplink
// shrank keeps encoding layers its link drops: in the lab (issue #10,
// scenario 4) Chrome at a 500 kbit/s cap went on sending h beside q for
// the 3 s of the hold while no subscriber received h, and the q the
// subscribers had just been moved to froze for 2.6 s until h was
// paused.
const dynacastSilent = time.Second

// dynacastArrive is how long a resumed layer counts as still paused for
// the layer selection (offered at its nominal rate) while its first
// packets are on the way: the publisher's browser needs a key frame for
// it, and its own send estimate must allow it. Without it the next
// selection round (well under a second later) saw the layer as not
// arriving, aimed below it, and dynacast paused it again after the hold:
// in the lab (issue #10, scenario 4) a publisher's top layer, resumed
// after its uplink cap was lifted, was paused again 3.5 s later every
// time and not asked for again for dynacastRetry.
const dynacastArrive = 2 * time.Second

// dynacastRetry: a layer that was resumed but never arrived before it
// was paused again (the publisher's uplink cannot carry it, and the
// browser keeps it off on its own) is not offered to the selector again
// for this long, so the SFU does not ask for it every few seconds.
const dynacastRetry = 30 * time.Second

// dynacastSilentRetry: layers paused because they went silent (see
// dynacastSilent) are not offered to the selector again for this long.
// Offered at once, they looked free to resume: in the lab (issue #10,
// scenario 4, 2026-12-05 16:02) a subscriber moved to q at a publisher's
// uplink cap was aimed at h 0.3 s later and at f 1.5 s after that,
// dynacast resumed them each time, the capped uplink carried neither,
// and the tiles froze for 3.4 s between the switches. The publisher's
// own estimate takes tens of seconds to carry them again anyway.
//
// The wait doubles, up to dynacastRetry, each time a layer goes silent
// again after such a retry, and starts afresh once a resumed layer has
// kept arriving for dynacastSteady: each resume makes the browser
// restart the layer with key frames on every layer it sends, and on an
// uplink that still cannot carry it that burst stalled the layer the
// subscribers had and froze their tiles for up to 2.4 s every 10-15 s
// (lab scenario 4, 2026-12-05 19:15).
const (
	dynacastSilentRetry = 10 * time.Second
	dynacastSteady      = 20 * time.Second
)

// nominalLayerBitrate is what a paused layer is assumed to cost when the
// selector weighs it (it has no measured rate while paused): the web
// client's maxBitrate per layer, lowest first.
var nominalLayerBitrate = [simulcast.MaxLayers]int{150_000, 500_000, 2_000_000, 2_000_000} //nolint:gochecknoglobals // read-only table

// dynacast is a simulcast track's layer activity.
type dynacast struct {
	mu          sync.Mutex
	top         simulcast.Layer // highest active layer
	lowerSince  time.Time       // since when fewer layers are needed, zero if not
	initialized bool
	resumed     [simulcast.MaxLayers]time.Time // when each layer was last resumed
	failed      [simulcast.MaxLayers]time.Time // resumed, never arrived: not offered until then
	// silentWait is each layer's next wait after it goes silent (zero:
	// dynacastSilentRetry).
	silentWait [simulcast.MaxLayers]time.Duration
	// settled is the highest active layer below every layer resumed
	// less than dynacastArrive ago that has not arrived since.
	settled simulcast.Layer
}

// activeTop is the highest layer the layer selection should take as
// sent: the highest the publisher was asked to send (all layers until
// the first decision), less those just resumed and not yet arrived
// (see dynacastArrive), which it weighs as paused.
func (t *publishedTrack) activeTop() simulcast.Layer {
	t.dyn.mu.Lock()
	defer t.dyn.mu.Unlock()
	if !t.dyn.initialized {
		return t.topLayer()
	}
	return t.dyn.settled
}

// offered reports whether layer l, paused, may be offered to the layer
// selection at now (it has not just failed to arrive after a resume).
func (t *publishedTrack) offered(l simulcast.Layer, now time.Time) bool {
	t.dyn.mu.Lock()
	defer t.dyn.mu.Unlock()
	return !now.Before(t.dyn.failed[l])
}

// silentAbove reports whether every active layer above need came and
// then has sent nothing for dynacastSilent. A layer that never came, or
// not since it was resumed, is left to the hold (and marked failed
// there): a browser needs seconds to start a layer its own estimate
// held back, and pausing it sooner keeps that estimate low. The caller
// holds d.mu.
func (d *dynacast) silentAbove(need simulcast.Layer, arrived *[simulcast.MaxLayers]time.Time, now time.Time) bool {
	if need >= d.top {
		return false
	}
	for l := need + 1; l <= d.top; l++ {
		a := arrived[l]
		if a.IsZero() || a.Before(d.resumed[l]) || now.Sub(a) < dynacastSilent {
			return false
		}
	}
	return true
}

// reviewLayers compares the layers t's subscribers aim at with those the
// publisher sends, and asks the publisher to change when they differ
// (see the top of this file for the timing). Each subscriber's layer
// selection calls it after its round, so it runs a few times a second
// while anyone subscribes.
func (t *publishedTrack) reviewLayers(now time.Time) {
	if !t.simulcast() || t.owner == nil || t.ended.Load() {
		return
	}
	ev, ok := t.owner.events.(LayerEvents)
	if !ok {
		return
	}
	need := simulcast.Layer(0)
	for _, d := range *t.downs.Load() {
		if d.sw != nil {
			need = max(need, d.sw.Target())
		}
	}
	need = min(need, t.topLayer())
	var arrived [simulcast.MaxLayers]time.Time
	t.statsMu.Lock()
	for i, ly := range t.layers {
		arrived[i] = ly.last
	}
	t.statsMu.Unlock()

	t.dyn.mu.Lock()
	if !t.dyn.initialized {
		t.dyn.initialized, t.dyn.top = true, t.topLayer()
	}
	changed := false
	silent := t.dyn.silentAbove(need, &arrived, now)
	switch {
	case need > t.dyn.top:
		for l := t.dyn.top + 1; l <= need; l++ {
			t.dyn.resumed[l] = now
		}
		t.dyn.top, t.dyn.lowerSince, changed = need, time.Time{}, true
	case need == t.dyn.top:
		t.dyn.lowerSince = time.Time{}
	case t.dyn.lowerSince.IsZero() && !silent:
		t.dyn.lowerSince = now
	case now.Sub(t.dyn.lowerSince) >= dynacastHold || silent:
		for l := need + 1; l <= t.dyn.top; l++ {
			switch {
			case !t.dyn.resumed[l].IsZero() && arrived[l].Before(t.dyn.resumed[l]):
				t.dyn.failed[l] = now.Add(dynacastRetry)
			case silent:
				w := max(t.dyn.silentWait[l], dynacastSilentRetry)
				t.dyn.failed[l] = now.Add(w)
				t.dyn.silentWait[l] = min(2*w, dynacastRetry)
			}
		}
		t.dyn.top, t.dyn.lowerSince, changed = need, time.Time{}, true
	}
	top := t.dyn.top
	for l := simulcast.Layer(0); l <= top; l++ {
		if r := t.dyn.resumed[l]; now.Sub(r) >= dynacastSteady && now.Sub(arrived[l]) < dynacastSilent {
			t.dyn.silentWait[l] = 0 // arriving this long after its resume: the uplink carries it
		}
	}
	t.dyn.settled = top
	for l := simulcast.Layer(0); l <= top; l++ {
		r := t.dyn.resumed[l]
		if !r.IsZero() && arrived[l].Before(r) && now.Sub(r) < dynacastArrive {
			t.dyn.settled = l - 1
			break
		}
	}
	t.dyn.mu.Unlock()
	if !changed {
		return
	}
	rids := make([]string, 0, int(top)+1)
	for _, ly := range t.layers[:top+1] {
		rids = append(rids, ly.rid)
	}
	t.log.Info("simulcast layers active", "rids", rids)
	ev.ActiveLayers(t.info, rids)
}
