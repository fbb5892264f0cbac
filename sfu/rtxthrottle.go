package sfu

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/sfu/internal/packetcache"
)

// Retransmission throttling: a subscriber's NACKs are answered from the
// packet cache, but not blindly. A receiver repeats its NACK for a
// packet until the repair arrives (pion's generator every 100 ms, for as
// long as the packet is in its receive log; Chrome every round trip), so
// on a congested link, where the repair waits in the bottleneck's queue
// or is dropped by it, answering every NACK sends the same packet again
// and again into the queue that lost it. Like libwebrtc's RTPSender (no
// resend of a packet resent within the last RTT, retransmissions under a
// rate limit) and LiveKit's sequencer (a few resends per packet, spaced),
// each packet is resent at most once per round trip and at most
// rtxMaxAttempts times, and a subscriber's retransmissions are held to a
// budget: a share of its estimated bandwidth, or a fixed rate without
// estimation. What is held back is counted
// (parley_sfu_nack_answers_total), not queued.

const (
	// rtxMaxAttempts: resends of one packet in all. A subscriber that
	// loses four copies of a packet is on a link that needs a key frame
	// more than a fifth copy.
	rtxMaxAttempts = 4
	// The spacing of resends of one packet is the subscriber's round trip
	// (a NACK repeated sooner was sent before the last copy could have
	// arrived) within these bounds; rtxDefaultInterval while no round
	// trip is known yet.
	rtxMinInterval     = 50 * time.Millisecond
	rtxMaxInterval     = time.Second
	rtxDefaultInterval = 100 * time.Millisecond
	// rtxForget: a history entry older than this belongs to an earlier
	// packet under the same number (numbers wrap after 65536 packets,
	// which takes minutes) or to one no receiver asks for any more.
	rtxForget = 10 * time.Second

	// rtxBudgetShare of the estimated bandwidth may go to retransmissions
	// on top of the media: with estimation on, the media fills the
	// estimate, so more would only add to the congestion that causes
	// the loss. rtxBudgetNoEstimate (bit/s) is the budget without
	// estimation: 10% loss on 10 Mbit/s of video, far more than a call
	// that works needs.
	rtxBudgetShare      = 0.25
	rtxBudgetNoEstimate = 1_000_000
	// The bucket holds rtxBurst of the budget, and at least
	// rtxBurstMinBytes (a few full packets: the losses of a burst, a key
	// frame's tail, are repaired together).
	rtxBurst         = 250 * time.Millisecond
	rtxBurstMinBytes = 4 * 1200
)

// rtxOutcome is what became of one NACKed sequence number.
type rtxOutcome uint8

const (
	rtxResent     rtxOutcome = iota // queued for resending
	rtxTooRecent                    // resent less than a round trip ago
	rtxMaxed                        // resent rtxMaxAttempts times already
	rtxOverBudget                   // the subscriber's budget was spent
	rtxLeftLayer                    // of a simulcast layer the subscriber has left
	numRTXOutcomes
)

// Outcomes of NACKed sequence numbers, the "outcome" label of
// parley_sfu_nack_answers_total.
const (
	NACKResent      = "resent"
	NACKTooRecent   = "too_recent"
	NACKMaxAttempts = "max_attempts"
	NACKOverBudget  = "over_budget"
	NACKLeftLayer   = "left_layer"
)

var rtxOutcomes = [numRTXOutcomes]string{NACKResent, NACKTooRecent, NACKMaxAttempts, NACKOverBudget, NACKLeftLayer} //nolint:gochecknoglobals // read-only table

// rtxHistory is one downTrack's record of its resends: per slot (the
// subscriber's sequence number modulo seqMapSize, like seqMap) the
// number, how often it was resent and when last, packed in one word:
// bits 0-15 the number, 16-23 the count, 24-63 the time in milliseconds
// since base (plus one: 0 is never). Only the downTrack's RTCP loop
// touches it, so it needs no lock; it is allocated at the first NACK, so
// tracks never NACKed (audio) cost nothing.
type rtxHistory struct {
	base  time.Time
	slots [seqMapSize]uint64
}

func newRTXHistory(now time.Time) *rtxHistory { return &rtxHistory{base: now} }

func (h *rtxHistory) stamp(now time.Time) uint64 {
	return uint64(max(now.Sub(h.base).Milliseconds(), 0)) + 1
}

// age is how long ago slot s was written for out; rtxForget when it
// holds another number or nothing.
func (h *rtxHistory) age(s uint64, out uint16, now time.Time) time.Duration {
	at, cur := s>>24, h.stamp(now)
	if uint16(s) != out || at == 0 || at > cur {
		return rtxForget
	}
	return time.Duration(cur-at) * time.Millisecond
}

// check says whether out may be resent now (rtxResent), given the
// spacing interval between resends.
func (h *rtxHistory) check(out uint16, now time.Time, interval time.Duration) rtxOutcome {
	s := h.slots[out%seqMapSize]
	age := h.age(s, out, now)
	switch {
	case age >= rtxForget:
		return rtxResent
	case uint8(s>>16) >= rtxMaxAttempts:
		return rtxMaxed
	case age < interval:
		return rtxTooRecent
	}
	return rtxResent
}

// note records that out was resent now.
func (h *rtxHistory) note(out uint16, now time.Time) {
	i := out % seqMapSize
	s := h.slots[i]
	n := uint64(1)
	if h.age(s, out, now) < rtxForget {
		n = min(s>>16&0xff+1, 0xff)
	}
	h.slots[i] = h.stamp(now)<<24 | n<<16 | uint64(out)
}

// rtxBudget is a subscriber's retransmission budget, a token bucket in
// bytes shared by the RTCP loops of all its tracks.
type rtxBudget struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// take spends n bytes if the bucket, refilled at rate bytes/s up to
// burst bytes, holds them. The bucket starts full.
func (b *rtxBudget) take(n int, rate, burst float64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = burst
	} else if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.tokens+rate*dt.Seconds(), burst)
	}
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// refund gives back n bytes taken for a packet that was not sent after
// all.
func (b *rtxBudget) refund(n int) {
	b.mu.Lock()
	b.tokens += float64(n)
	b.mu.Unlock()
}

// rtxRate is p's retransmission budget in bytes/s and the bucket's size.
func (p *Peer) rtxRate() (rate, burst float64) {
	bps := float64(rtxBudgetNoEstimate)
	if p.s.cfg.BandwidthEstimation {
		est := p.estimate.Load()
		if est <= 0 {
			est = bweInitialBitrate // before the first layer round
		}
		bps = float64(est) * rtxBudgetShare
	}
	rate = bps / 8
	return rate, max(rate*rtxBurst.Seconds(), rtxBurstMinBytes)
}

// subscriberRTT is the subscriber connection's round trip as ICE
// measured it (0 before the first measure).
func (p *Peer) subscriberRTT() time.Duration {
	if !p.subPaired.Load() {
		return 0
	}
	st, ok := p.sub.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		return 0
	}
	return time.Duration(st.CurrentRoundTripTime * float64(time.Second))
}

// rtxInterval is the spacing of resends of one packet to this
// subscriber: the longer of its connection's ICE round trip and the one
// its receiver reports about this stream give (both include the queue
// in front of a congested subscriber, where a copy resent sooner would
// wait behind the last one).
func (d *downTrack) rtxInterval(now time.Time) time.Duration {
	rtt := time.Duration(d.sub.subRTT.Load())
	if r := d.report.Load(); r != nil && now.Sub(r.at) < reportMaxAge {
		rtt = max(rtt, r.rtt)
	}
	if rtt <= 0 {
		return rtxDefaultInterval
	}
	return min(max(rtt, rtxMinInterval), rtxMaxInterval)
}

// answerNACK resends out, a number the subscriber NACKed, unless it was
// resent too recently or too often, or the subscriber's budget is spent.
// Runs on d's RTCP loop.
func (d *downTrack) answerNACK(out uint16, now time.Time) {
	t := d.src
	p := outPacket{d: d, out: out, rtx: true}
	var cache *packetcache.Cache
	left := false
	if d.sw != nil {
		_, in, m, ok := d.sw.Lookup(out)
		if !ok || int(m.Layer) >= len(t.layers) {
			return
		}
		p.in, p.m, cache = in, m, t.layers[m.Layer].cache
		left = m.Layer != d.sw.Current()
	} else {
		in, ok := d.incoming(out)
		if !ok {
			return
		}
		p.in, cache = in, t.cache
		if b := d.bind.Load(); b != nil && b.opus {
			cache = t.opusCache
		}
	}
	n := cache.Len(p.in)
	if n == 0 {
		return // never arrived or evicted: nothing to resend
	}
	if left {
		// The subscriber was switched to another layer since: its
		// decoder starts over at that layer's key frame, and a repair
		// of the old one would only take the budget (and the link) the
		// new key frame's repairs need. In the lab (scenario 1,
		// 2026-12-05 22:02) a subscriber whose link was just capped got
		// both 320x180 key frames 0.3 s after the switch, with the
		// 1280x720 packets the cap had dropped still NACKed, and one
		// camera stayed frozen at 1280x720 for 6 s.
		t.s.m.nackAnswers[rtxLeftLayer].Inc()
		return
	}
	if d.rtxHist == nil {
		d.rtxHist = newRTXHistory(now)
	}
	o := d.rtxHist.check(out, now, d.rtxInterval(now))
	if o == rtxResent {
		rate, burst := d.sub.rtxRate()
		if !d.sub.rtxBudget.take(n, rate, burst, now) {
			o = rtxOverBudget
		}
	}
	if o == rtxResent {
		if !d.q.push(p) {
			d.sub.rtxBudget.refund(n) // nothing was sent
			t.drop(dropQueueFull)
			return
		}
		d.rtxHist.note(out, now)
	}
	t.s.m.nackAnswers[o].Inc()
}
