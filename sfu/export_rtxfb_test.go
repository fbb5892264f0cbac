package sfu

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
