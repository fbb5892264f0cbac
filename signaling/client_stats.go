package signaling

import (
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/promreg"
	"github.com/parleyhq/parley/signaling/proto"
)

// Client statistics (issue #11, docs/protocol.md "client_stats"): each
// call participant's web client sends a getStats() summary every 10 s;
// the latest one is kept per participant for the admin API, and the
// audio concealment it reports feeds two Prometheus counters, so an
// operator sees how much audio clients had to invent.

// clientStatsGap is the least time between two accepted summaries of
// one call session. The web client sends one every 10 s; a faster
// sender's extra summaries are dropped, not answered, as the summary is
// advisory and an error for each would cost more than the summary.
const clientStatsGap = 5 * time.Second

// maxSampleRate bounds how many audio samples per second of wall time a
// summary may add to the counters per received track: Opus decodes at
// 48 kHz, so a client claiming more lies, and the counters must not
// jump by whatever it claims.
const maxSampleRate = 48000

// clientStatsEntry is one participant's latest summary.
type clientStatsEntry struct {
	body       proto.ClientStatsBody
	receivedAt time.Time
}

// clientStats holds the latest summary of every call participant of
// this node, by participant sid. An entry is removed when its call
// session ends (callSession.end), so the map holds at most one entry
// per live call session.
type clientStats struct {
	mu    sync.Mutex
	bySID map[string]clientStatsEntry

	samples   prometheus.Counter
	concealed prometheus.Counter
	dropped   prometheus.Counter
}

func newClientStats(reg prometheus.Registerer) (*clientStats, error) {
	c := &clientStats{
		bySID: map[string]clientStatsEntry{},
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_client_audio_samples_received_total",
			Help: "Audio samples that call clients report having played out (client_stats), summed over clients.",
		}),
		concealed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_client_audio_concealed_samples_total",
			Help: "Of those, samples the clients report as concealed (invented to cover lost or late audio) while the sender was not silent (DTX comfort noise excluded).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_client_stats_dropped_total",
			Help: "client_stats summaries dropped for coming sooner than 5 s after the previous one.",
		}),
	}
	if err := promreg.Register(reg, "client stats", c.samples, c.concealed, c.dropped); err != nil {
		return nil, err
	}
	return c, nil
}

// The handler joins the dispatch table here, as the gesture ones do.
func init() {
	maps.Copy(handlers, map[string]handler{
		proto.TypeClientStats: func(ss *session, r proto.Request) *proto.Error {
			ss.s.clientStats.put(ss.call.p.SID, *r.Body.(*proto.ClientStatsBody), time.Now())
			return nil
		},
	})
}

// put stores b as sid's latest summary unless the previous one was
// accepted less than clientStatsGap ago, and adds what it reports since
// the previous summary to the counters. It reports whether b was kept.
func (c *clientStats) put(sid string, b proto.ClientStatsBody, now time.Time) bool {
	c.mu.Lock()
	prev, had := c.bySID[sid]
	if had && now.Sub(prev.receivedAt) < clientStatsGap {
		c.mu.Unlock()
		c.dropped.Inc()
		return false
	}
	c.bySID[sid] = clientStatsEntry{body: b, receivedAt: now}
	c.mu.Unlock()

	// The first summary covers the call so far; later ones add their
	// growth. Totals that shrink (a remote track ended and left the sum)
	// only set a new baseline.
	var elapsed time.Duration
	var prevTotal, prevConcealed int64
	if had {
		elapsed = now.Sub(prev.receivedAt)
		prevTotal, prevConcealed = prev.body.Audio.TotalSamplesReceived, audible(prev.body.Audio)
	}
	dTotal := b.Audio.TotalSamplesReceived - prevTotal
	dConcealed := audible(b.Audio) - prevConcealed
	if dTotal <= 0 || dConcealed < 0 {
		return true
	}
	if had {
		limit := int64(elapsed.Seconds()+1) * maxSampleRate * int64(max(b.Audio.Tracks, 1))
		dTotal = min(dTotal, limit)
	}
	c.samples.Add(float64(dTotal))
	c.concealed.Add(float64(min(dConcealed, dTotal)))
	return true
}

// audible is the concealment a listener hears: concealed samples but
// those played while the sender was silent (DTX), which Chromium counts
// as concealed too.
func audible(a proto.ClientAudioStats) int64 { return a.ConcealedSamples - a.SilentConcealedSamples }

// forget drops sid's summary when its call session ends.
func (c *clientStats) forget(sid string) {
	c.mu.Lock()
	delete(c.bySID, sid)
	c.mu.Unlock()
}

// adminClientStats is a summary as the admin API shows it.
type adminClientStats struct {
	proto.ClientStatsBody
	ReceivedAt time.Time `json:"receivedAt"`
	// ConcealedRatio is (concealedSamples - silentConcealedSamples) /
	// totalSamplesReceived over the call so far: the share of received
	// audio that was invented to cover loss, without the comfort noise of
	// silent senders (0 before any audio was received).
	ConcealedRatio float64 `json:"concealedRatio"`
}

// view is sid's latest summary for the admin API, nil if none came.
func (c *clientStats) view(sid string) *adminClientStats {
	c.mu.Lock()
	e, ok := c.bySID[sid]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	v := &adminClientStats{ClientStatsBody: e.body, ReceivedAt: e.receivedAt}
	if n := e.body.Audio.TotalSamplesReceived; n > 0 {
		v.ConcealedRatio = float64(audible(e.body.Audio)) / float64(n)
	}
	return v
}
