package sfu

import (
	"maps"
	"slices"
	"time"
)

// RTXFeedback is the number of transport-cc reports read on p's
// subscriber RTX SSRCs and accepted by its estimator (rtxfeedback.go).
func RTXFeedback(p *Peer) uint64 {
	if p.rtxfb == nil {
		return 0
	}
	return p.rtxfb.feedback.Load()
}

// RTXReaders is the number of RTX SSRCs whose RTCP p reads.
func RTXReaders(p *Peer) int {
	if p.rtxfb == nil {
		return 0
	}
	p.rtxfb.mu.Lock()
	defer p.rtxfb.mu.Unlock()
	return len(p.rtxfb.readers)
}

// RTXReadersGap stops p's RTX readers, waits d and opens them again,
// as if they had been opened d late.
func RTXReadersGap(p *Peer, d time.Duration) {
	p.rtxfb.mu.Lock()
	ssrcs := slices.Collect(maps.Keys(p.rtxfb.readers))
	p.rtxfb.mu.Unlock()
	for _, s := range ssrcs {
		p.rtxfb.stop(s)
	}
	time.Sleep(d)
	for _, s := range ssrcs {
		p.rtxfb.open(s)
	}
}
