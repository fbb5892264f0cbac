package chatload

import (
	"fmt"
	"sync"
)

// ConvLog is a client's copy of one conversation's event log, the way
// the protocol asks clients to keep it: events by seq, the highest seq
// up to which nothing is missing, and a record of anything that
// contradicts what was held before (the same seq with another event),
// which a correct server never causes.
type ConvLog struct {
	mu         sync.Mutex
	bySeq      map[int64]Message
	contiguous int64 // every seq in 1..contiguous is held
	max        int64
	conflicts  []string
}

// NewConvLog returns an empty log.
func NewConvLog() *ConvLog { return &ConvLog{bySeq: map[int64]Message{}} }

// Apply adds an event. It reports whether the event leaves a gap below
// it (the caller fetches the missing range). Events already held are
// ignored after a consistency check.
func (l *ConvLog) Apply(m Message) (gap bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.Seq <= 0 {
		l.conflicts = append(l.conflicts, fmt.Sprintf("event with seq %d (clientMsgId %s)", m.Seq, m.ClientMsgID))
		return false
	}
	if old, ok := l.bySeq[m.Seq]; ok {
		if old.ClientMsgID != m.ClientMsgID || old.Text != m.Text || old.Kind != m.Kind {
			l.conflicts = append(l.conflicts, fmt.Sprintf("seq %d held as %s %q, received as %s %q",
				m.Seq, old.ClientMsgID, old.Text, m.ClientMsgID, m.Text))
		}
		return l.contiguous < l.max
	}
	l.bySeq[m.Seq] = m
	if m.Seq > l.max {
		l.max = m.Seq
	}
	for {
		if _, ok := l.bySeq[l.contiguous+1]; !ok {
			break
		}
		l.contiguous++
	}
	return l.contiguous < l.max
}

// Contiguous is the last seq up to which the log has no gap: the value
// to send in chat_sync and chat_range.
func (l *ConvLog) Contiguous() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.contiguous
}

// Max is the highest seq held.
func (l *ConvLog) Max() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// Messages returns the held events in seq order (with gaps if any).
func (l *ConvLog) Messages() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Message, 0, len(l.bySeq))
	for s := int64(1); s <= l.max; s++ {
		if m, ok := l.bySeq[s]; ok {
			out = append(out, m)
		}
	}
	return out
}

// Conflicts lists contradictions seen so far.
func (l *ConvLog) Conflicts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.conflicts...)
}
