package sfu

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/sfu/internal/simulcast"
)

// Bandwidth estimation and layer selection per subscriber: pion's GCC
// estimates what the subscriber connection carries (from the browser's
// transport-cc feedback), and one goroutine per subscriber (selectLoop)
// splits that estimate over the tracks it receives with a
// simulcast.Selector, then aims each simulcast track's Switcher at the
// chosen layer. The forwarding path only reads the Switcher's target, so
// selection costs nothing per packet.

// The estimator's bounds, bit/s. It starts where a call of two or three
// cameras at the top layer fits, so a good network shows full quality at
// once; GCC lowers it within a second or two when the feedback shows
// queueing or loss.
const (
	bweInitialBitrate = 3_000_000
	bweMinBitrate     = 100_000
	bweMaxBitrate     = 20_000_000
)

// selectInterval is how often the layers are chosen again without a tile
// report: often enough to follow the estimate within a second, rarely
// enough to cost nothing.
const selectInterval = 500 * time.Millisecond

// Nominal size of a simulcast track's top layer; each layer below is
// half the size of the one above (the web client's q/h/f at 1/4, 1/2
// and full size of a 1280x720 capture). The SFU does not read the
// encoded size, so a smaller capture gets at most one layer more than
// its tile needs.
const (
	nominalTopWidth  = 1280
	nominalTopHeight = 720
)

// SetView records how this participant shows a video track it receives:
// the rendered size in device pixels (0x0 when unknown) and whether it
// is visible. The layer selection uses it at once: a hidden tile gets no
// video, a small one the smallest layer that covers it. It ends a layer
// pinned with SetLayer.
func (p *Peer) SetView(trackSID string, width, height int, visible bool) error {
	d, err := p.downTrack(trackSID)
	if err != nil {
		return err
	}
	d.view.Store(&TileView{Width: max(width, 0), Height: max(height, 0), Visible: visible})
	d.pinned.Store(false)
	p.wakeSelect()
	return nil
}

// EstimatedBitrate is the subscriber connection's estimated available
// bandwidth in bit/s as last used for the layer choice (0 before the
// first choice or without a subscriber connection).
func (p *Peer) EstimatedBitrate() int { return int(p.estimate.Load()) }

func (p *Peer) wakeSelect() {
	if p.viewed == nil {
		return
	}
	select {
	case p.viewed <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// estimateChanged is the estimator's callback with each new target: a
// target that fell well below the one the last round used wakes the
// layer choice at once instead of at the next tick. A step down in
// the subscriber's link overflows its queue until the layers follow,
// and each of those milliseconds can cost frames (lab scenario 2: the
// choice came up to selectInterval after the estimate fell).
func (p *Peer) estimateChanged(target int) {
	if p.fall.fell(target) {
		p.wakeSelect()
	}
}

// fallWakeFactor: the estimator's target below this fraction of the one
// the last round used wakes the next round. GCC lowers its target to
// 0.85 of the acknowledged rate at an overuse; smaller moves wait for the
// tick, so the choice is not rerun at each feedback report.
const fallWakeFactor = 0.85

// fallWatch remembers the estimator's target at the last round of layer
// choice, for the estimator's goroutine to compare new targets with.
type fallWatch struct{ atRun atomic.Int64 }

// fell reports whether target is well below the last round's.
func (w *fallWatch) fell(target int) bool {
	r := w.atRun.Load()
	return r > 0 && float64(target) < fallWakeFactor*float64(r)
}

// ran records the estimator's target a round used.
func (w *fallWatch) ran(target int) { w.atRun.Store(int64(target)) }

// selectLoop chooses this subscriber's layers every selectInterval,
// after each tile report and when the estimate falls, until the peer
// closes. With bandwidth estimation it also runs the subscriber's
// bandwidth probes (probe.go): their pacing ticks come here too, so
// probing needs no goroutine of its own.
func (p *Peer) selectLoop() {
	sel := simulcast.NewSelector(simulcast.SelectorConfig{})
	tick := time.NewTicker(selectInterval)
	defer tick.Stop()
	var st selectState
	if p.bwe != nil && p.probes != nil {
		st.prober = newProber(p, p.probes)
		defer st.prober.stop()
	}
	for {
		select {
		case <-p.stopSelect:
			return
		case <-tick.C:
		case <-p.viewed:
		case now := <-st.prober.tick():
			st.prober.step(now)
			continue
		}
		st.run(p, sel, time.Now())
	}
}

// selectState is selectLoop's scratch space, reused between rounds.
type selectState struct {
	downs     []*downTrack
	tracks    []simulcast.TrackInfo
	decisions []simulcast.Decision
	lastObs   time.Time
	lastRun   time.Time
	// prober probes for bandwidth (nil without estimation); wanted is
	// what the tiles wanted at the last round, bit/s.
	prober *prober
	wanted int
	// congestedAt is the last round that saw the estimator congested,
	// congestedEst the estimate it used.
	congestedAt  time.Time
	congestedEst int
	// congested is the last round's reading, for the debug line that
	// marks where congestion begins and ends in the server's log.
	congested bool
}

// riseAfterCongestion: for this long after the estimator last showed
// congestion, the layer choice's estimate does not rise above what it
// was then. Under a cap pion's GCC swings far above the link within a
// second (its loss-based rate grows 5% at every feedback report once the
// queue has drained: 184 to 531 kbit/s in a second under a 300 kbit/s
// cap, lab scenario 1, 2026-12-06 14:04), and a layer chosen on the
// swing (640x360 at 32.4 s) sent a key frame the link could not carry:
// 1.8 s of freezes. Probing waits as long (probe.quietAfterCongestion);
// a link that really grew is found after it.
const riseAfterCongestion = 3 * time.Second

// run is one round of layer selection.
func (st *selectState) run(p *Peer, sel *simulcast.Selector, now time.Time) {
	st.downs = st.downs[:0]
	p.mu.Lock()
	for _, d := range p.down {
		st.downs = append(st.downs, d)
	}
	p.mu.Unlock()

	estimate, target := math.MaxInt32, 0
	congestedNow := false
	if p.bwe != nil {
		target = p.bwe.GetTargetBitrate()
		estimate = target
		p.fall.ran(estimate)
		// Read once a round: the estimator builds its stats anew each time.
		var loss float64
		congestedNow, loss = congested(p.bwe)
		if congestedNow != st.congested {
			// Over 10% loss or a delay overuse: what holds probes and
			// rises back for a while after it ends (the lab's step
			// scenario found the way up late with nothing in the log to
			// say why).
			st.congested = congestedNow
			p.log.Debug("congestion", "congested", congestedNow, "loss", loss, "estimate", target)
		}
		if st.prober != nil {
			estimate = st.prober.round(st.downs, estimate, st.wanted, congestedNow, loss, now)
		}
		// No rise within riseAfterCongestion of the last congestion:
		// above its value then, the estimate is what the layers do not
		// go up on.
		switch {
		case congestedNow:
			st.congestedAt, st.congestedEst = now, estimate
		case !st.congestedAt.IsZero() && now.Sub(st.congestedAt) < riseAfterCongestion:
			estimate = min(estimate, st.congestedEst)
		}
	}
	p.estimate.Store(int64(estimate))
	if p.sub != nil {
		p.subRTT.Store(int64(p.subscriberRTT()))
	}
	if now.Sub(st.lastObs) >= time.Second {
		st.lastObs = now
		p.s.m.estimatedBitrate.Observe(float64(estimate))
	}

	// While the estimator sees the link queueing or losing, a switch
	// down holds the old layer back (Switcher.SetHold): it would only
	// fill the queue the lower layer's key frame must pass.
	hold := congestedNow
	if p.bwe != nil {
		// And the writer paces while the link is short of room (pacer.go).
		rate := paceRate(target, st.congestedAt, now)
		if (rate > 0) != (p.queue.pace.Load() > 0) {
			p.log.Debug("pacing", "rate", rate, "target", target)
		}
		p.queue.pace.Store(rate)
	}

	st.tracks = st.tracks[:0]
	for _, d := range st.downs {
		st.tracks = append(st.tracks, d.selectInfo(now))
	}
	var tot simulcast.Totals
	st.decisions, tot = sel.Select(now, estimate, st.tracks, st.decisions)
	st.wanted = tot.Wanted
	if st.prober != nil {
		st.prober.used, st.prober.limited = tot.Used, tot.Limited > 0
	}
	// The time since the last round counts as below the wanted layer for
	// each visible simulcast video that receives less than its tile
	// wants (as of this round: rounds are at most selectInterval apart).
	raised := false
	var since time.Duration
	if !st.lastRun.IsZero() {
		since = min(now.Sub(st.lastRun), 2*selectInterval)
	}
	st.lastRun = now
	for i, d := range st.downs {
		if d.sw == nil {
			continue
		}
		if w := st.decisions[i].Wanted; since > 0 && w != simulcast.None && st.tracks[i].Visible && !d.pinned.Load() {
			if d.sw.Current() < w { // None (-1) is below every layer
				p.s.m.belowWanted.Add(since.Seconds())
			}
		}
		l := st.decisions[i].Layer
		if l == simulcast.None && st.tracks[i].Visible {
			// Visible but no layer measured as arriving (a publisher
			// stalled for a second, or just started): aim at the lowest,
			// the switcher forwards the best layer that does arrive.
			l = 0
		}
		// The temporal layer too: AllTemporal unless even the lowest
		// layers do not fit, and meaningless without a layer.
		tl := st.decisions[i].Temporal
		if l == simulcast.None {
			tl = simulcast.AllTemporal
		}
		if !d.pinned.Load() {
			c := st.decisions[i].Ceiling
			if st.decisions[i].Layer == simulcast.None {
				c = simulcast.MaxLayers - 1 // aimed at 0 above: whatever arrives
			}
			d.sw.SetCeiling(c)
			d.sw.SetHold(hold)
			if l != d.sw.Target() || tl != d.sw.TemporalTarget() {
				raised = raised || l > d.sw.Target()
				p.log.Info("simulcast layer", "track", d.src.info.SID, "layer", int(l),
					"temporal", temporalString(tl), "wanted", int(st.decisions[i].Wanted), "estimate", estimate)
				d.sw.SetTarget(l)
				d.sw.SetTemporal(tl)
			}
		}
		d.tickLayers(now)
		if n := d.sw.Switches(); n != d.switchesSeen {
			p.s.m.layerSwitches.Add(float64(n - d.switchesSeen))
			d.switchesSeen = n
		}
		d.src.reviewLayers(now)
	}
	if st.prober != nil {
		st.prober.selected(now, raised)
	}
}

// selectInfo describes d to the selector: its kind, the subscriber's
// tile, and each layer's nominal size and measured bitrate (0 for a
// layer that has not arrived for a second: the selector never picks it).
func (d *downTrack) selectInfo(now time.Time) simulcast.TrackInfo {
	t := d.src
	info := simulcast.TrackInfo{ID: t.info.SID, Kind: simulcast.Camera, Visible: true}
	if !t.video {
		info.Kind = simulcast.Audio
	}
	d.prioritize(&info) // screen shares and the active speaker first (priority.go)
	if v := d.view.Load(); v != nil {
		info.Visible, info.TileWidth, info.TileHeight = v.Visible, v.Width, v.Height
	}
	t.statsMu.Lock()
	defer t.statsMu.Unlock()
	if !t.simulcast() {
		info.Layers = []simulcast.LayerInfo{{Width: nominalTopWidth, Height: nominalTopHeight, Bitrate: int(t.bitrate)}}
		if now.Sub(t.lastPacket) > time.Second {
			info.Layers[0].Bitrate = 0
		}
		return info
	}
	n := len(t.layers)
	info.Layers = make([]simulcast.LayerInfo, n)
	paused := t.activeTop() + 1
	resumed := t.resumedAt()
	for i, ly := range t.layers {
		shift := n - 1 - i
		li := simulcast.LayerInfo{Width: nominalTopWidth >> shift, Height: nominalTopHeight >> shift, Bitrate: int(ly.bitrate)}
		if simulcast.Layer(i) >= paused {
			// Paused by dynacast: not arriving, but there for the
			// asking, so the selector may still choose it.
			switch {
			case !t.offered(simulcast.Layer(i), now):
				li.Bitrate = 0
			case li.Bitrate == 0:
				li.Bitrate = t.nominalBitrate(i)
			}
		} else if ly.last.IsZero() {
			// Active but not arrived yet: a browser starts a layer only
			// once its own send estimate carries it, seconds after the
			// track (a screen share's 2.5 Mbit/s top layer in the
			// end-to-end test). Offered at its nominal rate so a tile
			// that wants it keeps aiming at it (the switcher forwards the
			// best layer that arrives meanwhile); at 0, the aim fell to a
			// lower layer and dynacast paused the layer before it ever
			// came.
			if t.offered(simulcast.Layer(i), now) {
				li.Bitrate = t.nominalBitrate(i)
			}
		} else if silent := now.Sub(ly.last); silent > time.Second {
			li.Bitrate = 0
			if silent < layerStall {
				li.Stalled = max(int(ly.bitrate), t.nominalBitrate(i))
			}
		} else if li.Bitrate == 0 {
			// Arriving, not yet measured over a window (just started,
			// or resumed by dynacast): what such a layer usually costs.
			// As 1 bit/s it looked free, and a subscriber capped at 300
			// kbit/s was moved to 1280x720 the moment another one's
			// need resumed it (lab scenario 1).
			li.Bitrate = t.nominalBitrate(i)
		} else {
			for tid, r := range ly.tidBitrate {
				li.Temporal[tid] = int(r)
			}
		}
		if li.Bitrate > 0 && !resumed[i].IsZero() && now.Sub(resumed[i]) < layerSettle {
			// Resumed by dynacast less than two bitrate windows ago: its
			// measured rate covers part of a second at most (or is the
			// last one before it was paused, the encoder winding down),
			// far below what it sends. Taken at that, 1280x720 was chosen
			// for a subscriber capped at 300 kbit/s on an estimate of
			// 130-210 kbit/s the second it resumed (lab scenario 1).
			li.Bitrate = max(li.Bitrate, t.nominalBitrate(i))
			li.Temporal = [simulcast.AllTemporal + 1]int{}
		}
		info.Layers[i] = li
	}
	return info
}

// layerStall: a layer silent for more than a second but less than this
// has stalled (a publisher short of CPU, a burst of loss on its uplink)
// rather than stopped; see simulcast.LayerInfo.Stalled.
const layerStall = 5 * time.Second

// layerSettle is how long after dynacast resumed a layer its measured
// bitrate is not trusted: two of its one-second windows.
const layerSettle = 2 * time.Second

// resumedAt is when dynacast last resumed each layer of t (zero: never).
func (t *publishedTrack) resumedAt() [simulcast.MaxLayers]time.Time {
	t.dyn.mu.Lock()
	defer t.dyn.mu.Unlock()
	return t.dyn.resumed
}

// temporalString names a temporal target for the log: "all", or the
// highest VP8 temporal layer forwarded.
func temporalString(tl uint8) string {
	if tl >= simulcast.AllTemporal {
		return "all"
	}
	return strconv.Itoa(int(tl))
}
