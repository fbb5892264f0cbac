package relay

import (
	"sync"
	"time"
)

// readDeadline is a read deadline that a blocked reader notices when it
// changes.
type readDeadline struct {
	mu      sync.Mutex
	at      time.Time
	changed chan struct{}
}

func (d *readDeadline) init() { d.changed = make(chan struct{}, 1) }

func (d *readDeadline) set(t time.Time) {
	d.mu.Lock()
	d.at = t
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// wait returns a channel that fires at the deadline (nil: none) and a
// function that releases its timer. A deadline already past fires at once.
func (d *readDeadline) wait() (<-chan time.Time, func()) {
	d.mu.Lock()
	at := d.at
	d.mu.Unlock()
	if at.IsZero() {
		return nil, func() {}
	}
	t := time.NewTimer(max(time.Until(at), 0))

	return t.C, func() { t.Stop() }
}
