package lab

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/parleyhq/parley/e2e"
	"github.com/parleyhq/parley/internal/netlab"
)

// rawStat mirrors one entry of window.parley.stats().
type rawStat struct {
	Name                     string  `json:"name"`
	TrackSid                 string  `json:"trackSid"`
	Source                   string  `json:"source"`
	Kind                     string  `json:"kind"`
	FramesDecoded            int64   `json:"framesDecoded"`
	FrameWidth               int     `json:"frameWidth"`
	FrameHeight              int     `json:"frameHeight"`
	BytesReceived            int64   `json:"bytesReceived"`
	TotalSamplesReceived     int64   `json:"totalSamplesReceived"`
	ConcealedSamples         int64   `json:"concealedSamples"`
	FreezeCount              int     `json:"freezeCount"`
	TotalFreezesDuration     float64 `json:"totalFreezesDuration"`
	JitterBufferDelay        float64 `json:"jitterBufferDelay"`
	JitterBufferEmittedCount int64   `json:"jitterBufferEmittedCount"`
}

// recorder samples every participant's getStats() once a second into a
// timeline, from start until stop.
type recorder struct {
	c     *call
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	tl   netlab.Timeline
	last map[string]rawStat // by host and track
	at   map[string]time.Time
}

func (c *call) record(scenario string) *recorder {
	r := &recorder{c: c, start: time.Now(), done: make(chan struct{}),
		tl: netlab.Timeline{Scenario: scenario}, last: map[string]rawStat{}, at: map[string]time.Time{}}
	r.wg.Go(r.run)
	c.t.Cleanup(r.stop)
	return r
}

// now is the time since the recording started, in seconds.
func (r *recorder) now() float64 { return time.Since(r.start).Seconds() }

func (r *recorder) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The wall clock too (UTC, as the server's log), to find the note's
	// moment in the log.
	r.tl.Notes = append(r.tl.Notes, fmt.Sprintf("t=%.0f (%s) %s", r.now(), time.Now().UTC().Format("15:04:05.000"), s))
}

// stop ends the sampling (once) and returns the timeline.
func (r *recorder) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.wg.Wait()
}

func (r *recorder) timeline() *netlab.Timeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	tl := r.tl
	tl.Samples = append([]netlab.Sample(nil), r.tl.Samples...)
	return &tl
}

// run starts a sampler for each participant as it joins and waits for
// them at stop. Each participant is sampled by a goroutine of its own:
// read one after another, six pages under load took a round of several
// seconds (4 samples a page in 30 s in the lab run of 2026-12-05 13:12),
// and every page's samples were as late as the slowest page.
func (r *recorder) run() {
	var wg sync.WaitGroup
	defer wg.Wait()
	sampled := map[*peer]bool{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.c.mu.Lock()
		peers := append([]*peer(nil), r.c.peers...)
		r.c.mu.Unlock()
		for _, p := range peers {
			if !sampled[p] {
				sampled[p] = true
				wg.Go(func() { r.samplePeer(p) })
			}
		}
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
	}
}

// samplePeer samples p once a second until stop; a sample that takes
// longer than that is followed by the next at once.
func (r *recorder) samplePeer(p *peer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		r.sample(p)
	}
}

// pageSample is what one round trip to a page reads: its receivers'
// statistics, its transport's and its encodings'.
type pageSample struct {
	Stats     []rawStat `json:"stats"`
	Transport struct {
		Publisher *struct {
			AvailableOutgoingBitrate float64 `json:"availableOutgoingBitrate"`
		} `json:"publisher"`
	} `json:"transport"`
	Outbound []sentLayer `json:"outbound"`
}

const pageSampleJS = `Promise.all([window.parley.stats(), window.parley.transport(), window.parley.outbound()])
	.then(([stats, transport, outbound]) => ({stats, transport, outbound}))`

func (r *recorder) sample(p *peer) {
	ps, err := e2e.Eval[pageSample](r.c.ctx, p.b, pageSampleJS)
	if err != nil {
		return // the page is busy or gone: a gap in the timeline
	}
	stats, tr, out := ps.Stats, ps.Transport, ps.Outbound
	now := time.Now()
	r.c.mu.Lock()
	capBps := p.downCap
	r.c.mu.Unlock()
	s := netlab.Sample{T: now.Sub(r.start).Seconds(), Host: p.name, DownCapKbps: capBps / 1000}
	for _, o := range out {
		if o.Kind == "video" && o.Active && o.FrameHeight > 0 {
			e := fmt.Sprintf("%s:%d", o.Rid, o.FrameHeight)
			if o.Limit != "" && o.Limit != "none" {
				e += "(" + o.Limit + ")"
			}
			s.Sending = append(s.Sending, e)
		}
	}
	if tr.Publisher != nil {
		s.AvailableOutgoingKbps = tr.Publisher.AvailableOutgoingBitrate / 1000
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range stats {
		key := p.name + "|" + st.TrackSid
		prev, had := r.last[key]
		el := now.Sub(r.at[key]).Seconds()
		r.last[key], r.at[key] = st, now
		tk := netlab.Track{From: st.Name, Kind: st.Kind, Width: st.FrameWidth, Height: st.FrameHeight,
			FreezeCount: st.FreezeCount, FreezeSeconds: st.TotalFreezesDuration,
			AudioSamples: st.TotalSamplesReceived, ConcealedSamples: st.ConcealedSamples}
		if st.Kind == "video" && st.Source != "camera" {
			tk.From += " " + st.Source
		}
		if had && el > 0 {
			tk.Kbps = float64(st.BytesReceived-prev.BytesReceived) * 8 / 1000 / el
			tk.FPS = float64(st.FramesDecoded-prev.FramesDecoded) / el
		}
		if st.TotalSamplesReceived > 0 {
			tk.ConcealedPct = 100 * float64(st.ConcealedSamples) / float64(st.TotalSamplesReceived)
		}
		if st.JitterBufferEmittedCount > 0 {
			tk.JitterBufferMs = 1000 * st.JitterBufferDelay / float64(st.JitterBufferEmittedCount)
		}
		s.Tracks = append(s.Tracks, tk)
	}
	r.tl.Samples = append(r.tl.Samples, s)
}

// samples returns host's samples taken in [from, to) seconds.
func (r *recorder) samples(host string, from, to float64) []netlab.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []netlab.Sample
	for _, s := range r.tl.Samples {
		if s.Host == host && s.T >= from && s.T < to {
			out = append(out, s)
		}
	}
	return out
}

func lookupEnv(k string) string { return os.Getenv(k) }
