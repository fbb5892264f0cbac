package simulcast

import (
	"slices"
	"time"
)

// Kind is what a track carries; it sets the track's priority when the
// bandwidth does not cover everything.
type Kind uint8

const (
	Camera Kind = iota
	Screen
	Audio
)

// LayerInfo describes one layer of a published track.
type LayerInfo struct {
	Width, Height int
	// Bitrate is the layer's measured bitrate in bit/s. A layer with
	// Bitrate 0 is not arriving and is never chosen; for a layer that is
	// paused at the publisher because nobody needed it (dynacast), pass
	// its last or expected bitrate so it can be chosen again.
	Bitrate int
	// Stalled, for a layer not arriving now (Bitrate 0) that arrived a
	// moment ago, is its bitrate before it stopped (0 otherwise): a
	// publisher short of CPU stalls a layer for a second or so. The
	// lowest layer stalled, a track is not moved to an arriving layer
	// above it that the estimate cannot carry: it waits for it.
	Stalled int
	// Temporal is the layer's bitrate with its frames of VP8 temporal
	// layers 0..t only, for each t (so Temporal[0] is the base frame
	// rate's). All zero for a layer without temporal layers, or not yet
	// measured: its frame rate is then never lowered.
	Temporal [AllTemporal + 1]int
}

// topTemporal is li's highest temporal layer that has frames of its
// own (2 for Chrome's three), AllTemporal if none is measured:
// forwarding up to it is forwarding everything.
func (li *LayerInfo) topTemporal() uint8 {
	for t := AllTemporal; t > 0; t-- {
		if li.Temporal[t] > li.Temporal[t-1] {
			return t
		}
	}
	if li.Temporal[0] > 0 {
		return 0
	}
	return AllTemporal
}

// temporalRate is li's bitrate forwarding temporal layers up to tid:
// its whole bitrate from the top one up (what the layer choice pays for
// it, padding and retransmissions included).
func (li *LayerInfo) temporalRate(tid uint8) int {
	if tid >= li.topTemporal() {
		return li.Bitrate
	}
	return li.Temporal[tid]
}

// lowerTemporal is the highest temporal layer below tid (below the top
// one for AllTemporal) whose frames cost less, or false if there is
// none.
func (li *LayerInfo) lowerTemporal(tid uint8) (uint8, bool) {
	rate := li.temporalRate(tid)
	for t := int(min(tid, li.topTemporal())) - 1; t >= 0; t-- {
		if r := li.Temporal[t]; r > 0 && r < rate {
			return uint8(t), true
		}
	}
	return 0, false
}

// TrackInfo is one track a subscriber receives, as the selector sees it.
type TrackInfo struct {
	// ID identifies the track across calls, for the hysteresis state.
	ID      string
	Kind    Kind
	Speaker bool // the active speaker's camera
	// Visible and the tile size come from the subscriber's client: the
	// size the video is rendered at, in device pixels. A hidden tile gets
	// nothing; a size of 0x0 means not reported (no limit from the tile).
	Visible               bool
	TileWidth, TileHeight int
	// Layers, lowest quality first. Audio has one entry carrying its
	// bitrate; a video track without simulcast has one layer.
	Layers []LayerInfo
}

// Decision is the selector's choice for one track.
type Decision struct {
	// Layer is the layer to forward, None for nothing.
	Layer Layer
	// Wanted is what the tile would take with bandwidth to spare: the
	// smallest layer covering the tile (None if hidden). Layer < Wanted
	// means the track is held back by bandwidth.
	Wanted Layer
	// Temporal is the highest VP8 temporal layer to forward of it,
	// AllTemporal when every frame goes (the usual case; lower only when
	// even the lowest layers of the visible tracks do not fit).
	Temporal uint8
	// Bitrate is what the choice is paid for: the chosen layer's
	// bitrate (at that frame rate), or a lower layer's if that is more
	// (see cost).
	Bitrate int
	// Ceiling is the highest layer the switcher may forward while Layer
	// does not arrive (it falls back to the best arriving layer below,
	// else the lowest above): the layers above Layer that what the
	// estimate leaves would carry. Falling back to a layer beyond it
	// (a capped subscriber moved to 1280x720 for a second because a
	// publisher's 320x180 stalled) overflows the link and freezes every
	// other tile too; the tile waits for its layer instead.
	Ceiling Layer
}

// Totals sums a selection: Used is the bitrate of the chosen layers,
// Wanted what the tiles would take with bandwidth to spare (each
// wanted layer, or the best layer below it that arrives: wantedRate),
// the amount worth probing for when it exceeds the estimate. Limited
// counts the tracks held below their wanted layer or frame rate: with
// none, more bandwidth would change nothing (every track is where its
// tile wants it, or has a single layer), and probing for it only
// spends the subscriber's link.
type Totals struct {
	Used, Wanted int
	Limited      int
}

// Defaults for SelectorConfig's zero fields.
const (
	DefaultUpMargin = 0.15
	DefaultUpHold   = 2 * time.Second
	// One selection round (sfu's selectInterval): the step is taken at
	// the second round that sees it covered twice over.
	DefaultQuickHold   = 500 * time.Millisecond
	DefaultQuickFactor = 2.0
)

// SelectorConfig sets the selector's hysteresis.
type SelectorConfig struct {
	// UpMargin: a layer above the one a track has is chosen only if the
	// budget covers its bitrate times 1+UpMargin. Stepping down needs no
	// margin, so an estimate hovering at a layer's bitrate does not make
	// the track go up and down.
	UpMargin float64
	// UpHold: a track held back by bandwidth steps up only once the
	// higher layer has fitted (with the margin) for this long. A track
	// that was at its wanted layer goes up at once when its tile grows.
	UpHold time.Duration
	// QuickHold replaces UpHold for a step up that the budget covers
	// QuickFactor times over (with the margin).
	QuickHold   time.Duration
	QuickFactor float64
}

type trackState struct {
	layer   Layer
	limited bool      // layer < wanted for lack of bandwidth
	upSince time.Time // since when a step up has fitted, zero if not
	seen    uint64
	// The temporal layer chosen last, and since when a higher one has
	// fitted (with the margin), zero if not.
	temporal uint8
	tUpSince time.Time
}

// Selector chooses a layer for each track one subscriber receives. It
// keeps per-track state between calls for the hysteresis, so one
// Selector serves one subscriber; it is not safe for concurrent use.
type Selector struct {
	cfg   SelectorConfig
	state map[string]*trackState
	gen   uint64
	order []int
	sts   []*trackState
	upOK  []bool
}

// NewSelector returns a selector with no history.
func NewSelector(cfg SelectorConfig) *Selector {
	if cfg.UpMargin <= 0 {
		cfg.UpMargin = DefaultUpMargin
	}
	if cfg.UpHold <= 0 {
		cfg.UpHold = DefaultUpHold
	}
	if cfg.QuickHold <= 0 {
		cfg.QuickHold = min(DefaultQuickHold, cfg.UpHold)
	}
	if cfg.QuickFactor <= 1 {
		cfg.QuickFactor = DefaultQuickFactor
	}
	return &Selector{cfg: cfg, state: make(map[string]*trackState)}
}

// Select splits estimate (bit/s) across tracks and appends one Decision
// per track, in the order of tracks, to dst[:0].
//
// Audio is always sent and paid for first. Video is served in priority
// order: screen shares, then the active speaker's camera, then other
// cameras, larger tiles first within each class. Every visible track
// gets its lowest arriving layer even when the estimate does not cover
// it: a small moving picture beats a black tile, an estimate can be
// wrong low for a while (a busy receiver's late feedback looks like
// queueing), and the browser keeps its own lowest layer going for the
// same reason (a track whose lowest arriving layer is above what its
// tile needs still gets that layer). What the estimate leaves then
// raises tracks, in the same order, up to the layer their tile needs
// and never beyond.
func (s *Selector) Select(now time.Time, estimate int, tracks []TrackInfo, dst []Decision) ([]Decision, Totals) {
	s.gen++
	dst = slices.Grow(dst[:0], len(tracks))[:len(tracks)]
	s.order = s.order[:0]
	s.sts = slices.Grow(s.sts[:0], len(tracks))[:len(tracks)]
	s.upOK = slices.Grow(s.upOK[:0], len(tracks))[:len(tracks)]
	var tot Totals
	budget := estimate
	for i := range tracks {
		t := &tracks[i]
		st := s.state[t.ID]
		if st == nil {
			st = &trackState{layer: None, temporal: AllTemporal}
			s.state[t.ID] = st
		}
		st.seen = s.gen
		s.sts[i], s.upOK[i] = st, false
		dst[i] = Decision{Layer: None, Wanted: None, Temporal: AllTemporal}
		if t.Kind == Audio {
			if len(t.Layers) > 0 {
				b := t.Layers[0].Bitrate
				dst[i] = Decision{Layer: 0, Wanted: 0, Temporal: AllTemporal, Bitrate: b}
				budget -= b
				tot.Wanted += b
			}
			continue
		}
		dst[i].Wanted = wanted(t)
		if dst[i].Wanted != None {
			tot.Wanted += wantedRate(t, dst[i].Wanted)
			s.order = append(s.order, i)
		}
	}
	slices.SortStableFunc(s.order, func(a, b int) int { return comparePriority(&tracks[a], &tracks[b]) })

	// Pass 1: the lowest arriving layer for each visible track, paid
	// for even beyond the budget; or, when the lowest layer has only
	// stalled and what arrives above it is beyond the budget, that
	// lowest layer, to wait for (see LayerInfo.Stalled).
	for _, i := range s.order {
		t := &tracks[i]
		for l := range Layer(len(t.Layers)) {
			if t.Layers[l].Bitrate > 0 {
				dst[i].Layer, dst[i].Bitrate = l, t.Layers[l].Bitrate
				if st := t.Layers[0].Stalled; l > 0 && st > 0 && t.Layers[l].Bitrate > budget {
					dst[i].Layer, dst[i].Bitrate = 0, st
				}
				budget -= dst[i].Bitrate
				break
			}
		}
	}
	short := s.lowerFrameRates(now, tracks, dst, &budget)
	budget = max(budget, 0)
	// Pass 2: raise each track, in priority order, as far as its tile
	// and the budget allow (unless the budget lowered some track's frame
	// rate: then nothing is left to raise with). A track whose frame
	// rate is only held down by the hysteresis (the budget covers it,
	// not yet for UpHold) counts at its full frame rate, and once a
	// higher layer fits it goes there with every frame: its key frame
	// restarts all temporal layers, so the frame rate and the size come
	// back in one step instead of one after the other, each with a hold.
	for _, i := range s.order {
		t, d := &tracks[i], &dst[i]
		if d.Layer == None || short {
			continue
		}
		paid := t.Layers[d.Layer].Bitrate
		for l := d.Wanted; l > d.Layer; l-- {
			if t.Layers[l].Bitrate > 0 && s.fits(now, i, t, l, paid, budget) {
				c := cost(t, l)
				budget -= c - paid
				d.Layer, d.Bitrate, d.Temporal = l, c, AllTemporal
				break
			}
		}
	}

	for i := range tracks {
		st, d := s.sts[i], &dst[i]
		d.Ceiling = ceiling(&tracks[i], d, budget)
		switch {
		case d.Layer > st.layer || !s.upOK[i]:
			st.upSince = time.Time{}
		case st.upSince.IsZero():
			st.upSince = now
		}
		st.layer, st.temporal = d.Layer, d.Temporal
		st.limited = d.Layer < d.Wanted
		if st.limited || d.Layer != None && d.Temporal < AllTemporal {
			tot.Limited++
		}
		tot.Used += d.Bitrate
	}
	for id, st := range s.state {
		if st.seen != s.gen {
			delete(s.state, id)
		}
	}
	return dst, tot
}

// lowerFrameRates is pass 1b: when the lowest layers of the visible
// tracks overflow the budget, it drops their upper temporal layers, the
// lowest priority track first and one temporal layer at a time, until
// they fit or are down to their base frame rate: a camera at a quarter
// of its frame rate beats one the network chokes (the queue drops
// packets of every frame, and the picture freezes). It reports whether
// it lowered any (the budget is short). A track's frame rate goes back
// up once the budget covers it with UpMargin, for UpHold (never the
// quick hold, see below); until then the track stays at the frame rate
// it had, and the budget keeps what its full frame rate costs (pass 2
// may spend it on that track's next layer, not on others).
func (s *Selector) lowerFrameRates(now time.Time, tracks []TrackInfo, dst []Decision, budget *int) bool {
	for k := len(s.order) - 1; k >= 0 && *budget < 0; k-- {
		i := s.order[k]
		d := &dst[i]
		if d.Layer == None {
			continue
		}
		li := &tracks[i].Layers[d.Layer]
		for *budget < 0 {
			t, ok := li.lowerTemporal(d.Temporal)
			if !ok {
				break
			}
			*budget += d.Bitrate - li.temporalRate(t)
			d.Temporal, d.Bitrate = t, li.temporalRate(t)
		}
	}
	short := false
	for _, i := range s.order {
		short = short || dst[i].Layer != None && dst[i].Temporal < AllTemporal
	}
	left := *budget
	for _, i := range s.order {
		d, st := &dst[i], s.sts[i]
		if d.Layer == None {
			continue
		}
		li := &tracks[i].Layers[d.Layer]
		if st.layer == d.Layer && d.Temporal > st.temporal {
			// A step up in frame rate: the same margin and hold as a
			// step up in layer, against what is left with every track
			// at the frame rate chosen above.
			// Always the full hold: under a cap GCC's estimate spikes
			// for a second at times, and a frame rate raised on a
			// spike overflows the link until the switcher has stepped
			// it down again (one temporal layer per TemporalStepDown).
			// A cap lifted far enough brings the next layer after the
			// quick hold anyway, with every frame (pass 2).
			if float64(left) < float64(d.Bitrate)*s.cfg.UpMargin {
				st.tUpSince = time.Time{}
			} else if st.tUpSince.IsZero() {
				st.tUpSince = now
			}
			if (st.tUpSince.IsZero() || now.Sub(st.tUpSince) < s.cfg.UpHold) && li.temporalRate(st.temporal) > 0 {
				d.Temporal, d.Bitrate = st.temporal, li.temporalRate(st.temporal)
			} else {
				st.tUpSince = time.Time{}
			}
		} else {
			st.tUpSince = time.Time{}
		}
	}
	return short
}

// fits reports whether track i may take layer l, paying its bitrate
// minus paid out of budget. Staying at or below the current layer needs
// only the bitrate; stepping up needs the margin too and, for a track
// held back by bandwidth, the hold time.
func (s *Selector) fits(now time.Time, i int, t *TrackInfo, l Layer, paid, budget int) bool {
	st := s.sts[i]
	c := cost(t, l)
	need := c - paid
	if l <= st.layer {
		return need <= budget
	}
	required := need + int(float64(c)*s.cfg.UpMargin)
	if required > budget {
		return false
	}
	if !st.limited {
		return true
	}
	s.upOK[i] = true
	return !st.upSince.IsZero() && now.Sub(st.upSince) >= s.hold(required, budget)
}

// hold is how long a step up that needs required bit/s (its margin
// included) must have fitted before it is taken, with budget left for
// it now: UpHold, or QuickHold when the budget covers it
// QuickFactor times over. The hold is there for an estimate that hovers
// at a layer's bitrate; one far above it (a cap lifted, the probes or
// GCC climbing past the layer) would take the layer at the next dip
// just as well, and each full hold on the way back up costs seconds.
func (s *Selector) hold(required, budget int) time.Duration {
	if float64(budget) >= s.cfg.QuickFactor*float64(required) {
		return s.cfg.QuickHold
	}
	return s.cfg.UpHold
}

// ceiling is the highest layer of t, from d's up, that left (what the
// estimate leaves after every choice) would carry in place of d's:
// layers not arriving do not count, the switcher never takes them.
func ceiling(t *TrackInfo, d *Decision, left int) Layer {
	if d.Layer == None {
		return None
	}
	c := d.Layer
	for l := d.Layer + 1; int(l) < len(t.Layers); l++ {
		if t.Layers[l].Bitrate > 0 && cost(t, l)-d.Bitrate > left {
			break
		}
		c = l
	}
	return c
}

// cost is what layer l of t is paid for: its bitrate, or a lower
// layer's if that is more. A layer above another costs more; measured
// less, it has only just started or resumed (its first window was part
// of a second, or it sends its first frames at a low rate), and taken
// at that it was chosen on an estimate far below what it then sent
// (1280x720 for a subscriber capped at 300 kbit/s, lab scenario 1).
func cost(t *TrackInfo, l Layer) int {
	c := 0
	for k := range l + 1 {
		c = max(c, t.Layers[k].Bitrate)
	}
	return c
}

// wantedRate is what t's tile would take with bandwidth to spare, w
// being its wanted layer: w's cost, or, if w is not arriving, the cost
// of the best layer below it that is. Counted at 0, a wanted layer its
// publisher had stopped (dynacast holds a layer that went silent back
// for 10 s) left the tile's current layer out of the total: probing
// stopped below what the other tiles needed, and a subscriber whose cap
// was lifted waited 8 s at 640x360 for a camera whose 1280x720 layer
// was arriving (lab scenario 1, 2026-12-06 01:41).
func wantedRate(t *TrackInfo, w Layer) int {
	for l := w; l >= 0; l-- {
		if t.Layers[l].Bitrate > 0 {
			return cost(t, l)
		}
	}
	return 0
}

// wanted is the smallest layer whose resolution covers the tile, the
// top layer if none does or the tile size is unknown, None if hidden or
// the track has no layers. Layers of equal resolution differ only in
// frame rate (a screen share's low-frame-rate layer), which the tile
// says nothing about, so of those the highest is wanted.
func wanted(t *TrackInfo) Layer {
	n := len(t.Layers)
	if !t.Visible || n == 0 {
		return None
	}
	w := n - 1
	if t.TileWidth > 0 || t.TileHeight > 0 {
		for l := range n {
			if t.Layers[l].Width >= t.TileWidth && t.Layers[l].Height >= t.TileHeight {
				w = l
				break
			}
		}
	}
	for w+1 < n && t.Layers[w+1].Width == t.Layers[w].Width && t.Layers[w+1].Height == t.Layers[w].Height {
		w++
	}
	return Layer(w)
}

// comparePriority orders video tracks: screen shares, the active
// speaker, other cameras; larger tiles first within a class.
func comparePriority(a, b *TrackInfo) int {
	if pa, pb := class(a), class(b); pa != pb {
		return pa - pb
	}
	return b.TileWidth*b.TileHeight - a.TileWidth*a.TileHeight
}

func class(t *TrackInfo) int {
	switch {
	case t.Kind == Screen:
		return 0
	case t.Speaker:
		return 1
	}
	return 2
}
