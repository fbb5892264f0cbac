package sfu

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Connection quality: each participant gets a level from what the SFU
// measures of its connections, the way LiveKit and Jitsi show bars on a
// tile. Upstream, the loss and jitter of the packets its published
// tracks bring (the SFU's own receive statistics); downstream, the loss,
// jitter and round-trip time its browser reports for what it receives
// (RTCP receiver reports on the subscriber connection); and a connection
// that ICE reports disconnected or failed makes it lost at once.

// Quality is a connection-quality level, best first.
type Quality int8

const (
	QualityExcellent Quality = iota
	QualityGood
	QualityPoor
	QualityLost
)

func (q Quality) String() string {
	switch q {
	case QualityExcellent:
		return "excellent"
	case QualityGood:
		return "good"
	case QualityPoor:
		return "poor"
	}
	return "lost"
}

// Thresholds of the levels: a measure at or under the first is
// excellent, under the second good, else poor; the level is the worst of
// the measures. Loss in the range of a few percent is what FEC, NACKs and
// concealment hide; beyond 8% speech and video visibly suffer. An RTT of
// 250 ms stays conversational, 500 ms does not (ITU-T G.114 puts the
// limit of one-way delay at 150-400 ms).
const (
	lossExcellent, lossGood     = 0.02, 0.08
	rttExcellent, rttGood       = 250 * time.Millisecond, 500 * time.Millisecond
	jitterExcellent, jitterGood = 30 * time.Millisecond, 80 * time.Millisecond
)

// reportMaxAge: a subscriber's receiver report older than this no longer
// counts (browsers send one a second or more often while receiving).
const reportMaxAge = 10 * time.Second

// linkStats is what one measure says: loss 0..1, jitter and RTT (0 when
// unknown).
type linkStats struct {
	loss   float64
	jitter time.Duration
	rtt    time.Duration
}

func (s linkStats) quality() Quality {
	q := QualityExcellent
	grade := func(v, excellent, good float64) {
		switch {
		case v <= excellent:
		case v <= good:
			q = max(q, QualityGood)
		default:
			q = max(q, QualityPoor)
		}
	}
	grade(s.loss, lossExcellent, lossGood)
	grade(float64(s.jitter), float64(jitterExcellent), float64(jitterGood))
	grade(float64(s.rtt), float64(rttExcellent), float64(rttGood))
	return q
}

// rxReport is a downTrack's last receiver report from the subscriber.
type rxReport struct {
	at     time.Time
	loss   float64
	jitter time.Duration
	rtt    time.Duration
}

// noteReceiverReport keeps the report block about d's stream, if the
// packet has one.
func (d *downTrack) noteReceiverReport(rr *rtcp.ReceiverReport, now time.Time) {
	b := d.bind.Load()
	if b == nil {
		return
	}
	for _, r := range rr.Reports {
		if r.SSRC != b.ssrc {
			continue
		}
		rep := &rxReport{at: now, loss: float64(r.FractionLost) / 256}
		if rate := d.src.clockRate; rate > 0 {
			rep.jitter = time.Duration(float64(r.Jitter) / float64(rate) * float64(time.Second))
		}
		rep.rtt = rttFromReport(r.LastSenderReport, r.Delay, now)
		d.report.Store(rep)
		return
	}
}

// rttFromReport is RFC 3550's round trip (section 6.4.1): the arrival
// time minus the sender report's time (LSR) minus the receiver's delay
// (DLSR), all in the middle 32 bits of NTP time (1/65536 s). pion's
// sender reports carry the wall clock, so now is comparable. 0 when the
// receiver had no sender report yet or the result is not plausible.
func rttFromReport(lsr, dlsr uint32, now time.Time) time.Duration {
	if lsr == 0 {
		return 0
	}
	ntp := uint32(ntpTime(now) >> 16)
	d := ntp - lsr - dlsr
	if d > 10*65536 { // over 10 s, or negative: clocks or report broken
		return 0
	}
	return time.Duration(float64(d) / 65536 * float64(time.Second))
}

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // 1900 to 1970, seconds
	sec := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(float64(t.Nanosecond()) / 1e9 * math.Exp2(32))
	return sec<<32 | frac
}

// pcState keeps a connection's last state for the quality level.
type pcState struct{ v atomic.Int32 }

func (s *pcState) set(st webrtc.PeerConnectionState) { s.v.Store(int32(st)) }

func (s *pcState) broken() bool {
	st := webrtc.PeerConnectionState(s.v.Load())
	return st == webrtc.PeerConnectionStateDisconnected || st == webrtc.PeerConnectionStateFailed
}

// ConnectionQuality is this participant's connection-quality level now:
// the worst of its upstream (published tracks as received) and its
// downstream (the receiver reports of what it receives), lost while a
// connection is disconnected or failed. A participant with nothing
// measured yet is excellent.
func (p *Peer) ConnectionQuality() Quality {
	if p.pubState.broken() || p.subState.broken() {
		return QualityLost
	}
	now := time.Now()
	q := QualityExcellent
	p.mu.Lock()
	pubs := make([]*publishedTrack, 0, len(p.published))
	for _, t := range p.published {
		pubs = append(pubs, t)
	}
	downs := make([]*downTrack, 0, len(p.down))
	for _, d := range p.down {
		downs = append(downs, d)
	}
	p.mu.Unlock()
	for _, t := range pubs {
		if t.muted.Load() {
			continue
		}
		st := t.stats()
		if now.Sub(st.LastPacketTime) > reportMaxAge {
			continue // paused or not started: nothing to judge
		}
		q = max(q, linkStats{loss: st.FractionLost, jitter: time.Duration(st.JitterMs * float64(time.Millisecond))}.quality())
	}
	for _, d := range downs {
		r := d.report.Load()
		if r == nil || now.Sub(r.at) > reportMaxAge {
			continue
		}
		q = max(q, linkStats{loss: r.loss, jitter: r.jitter, rtt: r.rtt}.quality())
	}
	return q
}

// QualityEvents is implemented by PeerEvents that want the room's
// connection-quality levels. Optional like SpeakerEvents; must not block.
type QualityEvents interface {
	// ConnectionQuality reports every participant's level whenever one
	// of them changed: participant id to level. The map is shared by
	// every peer of the room: read it, never change it.
	ConnectionQuality(levels map[string]Quality)
}

// qualityEvery is how many speaker ticks pass between two quality
// reviews (2 s): receiver reports come about once a second, and a level
// that flips faster than people can read it helps nobody.
const qualityEvery = 20

// reviewQuality scores the room's peers and, if a level changed since
// last (updated in place), tells every peer the room's levels.
func (s *SFU) reviewQuality(peers []*Peer, last map[string]Quality) {
	changed := len(last) != len(peers)
	levels := make(map[string]Quality, len(peers))
	for _, p := range peers {
		q := p.ConnectionQuality()
		levels[p.id] = q
		if old, ok := last[p.id]; !ok || old != q {
			changed = true
		}
	}
	if !changed {
		return
	}
	clear(last)
	for id, q := range levels {
		last[id] = q
	}
	for _, p := range peers {
		if e, ok := p.events.(QualityEvents); ok {
			e.ConnectionQuality(levels)
		}
	}
}
