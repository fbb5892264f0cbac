package signaling

import (
	"sync"
	"time"
)

// maxRemovals bounds the removals remembered at once; past it the
// oldest is forgotten first.
const maxRemovals = 100_000

// removals remembers the participants the admin API removed, so that a
// token issued to that identity for that room before the removal (the
// refreshed tokens its session received included) cannot simply join
// again. A token issued after the removal joins as usual. An entry is
// kept as long as a token issued before it may still be valid.
type removals struct {
	keep  time.Duration // the longest lifetime of a token the server issues
	limit int           // entries at most

	mu sync.Mutex
	at map[removalKey]time.Time
}

type removalKey struct{ room, identity string }

func newRemovals(keep time.Duration) *removals {
	return &removals{keep: keep, limit: maxRemovals, at: map[removalKey]time.Time{}}
}

// add records that identity was removed from room at now.
func (r *removals) add(room, identity string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.at) >= r.limit {
		r.pruneLocked(now)
	}
	if len(r.at) >= r.limit {
		var oldest removalKey
		var first time.Time
		for k, t := range r.at {
			if first.IsZero() || t.Before(first) {
				oldest, first = k, t
			}
		}
		delete(r.at, oldest)
	}
	r.at[removalKey{room, identity}] = now
}

// revoked reports whether a token for room and identity issued at
// issuedAt predates a removal. Token times are whole seconds, so a token
// issued in the second of the removal counts as before it.
func (r *removals) revoked(room, identity string, issuedAt, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[removalKey{room, identity}]
	if !ok {
		return false
	}
	if now.Sub(at) > r.keep {
		delete(r.at, removalKey{room, identity})
		return false
	}
	return !issuedAt.After(at.Truncate(time.Second))
}

func (r *removals) pruneLocked(now time.Time) {
	for k, t := range r.at {
		if now.Sub(t) > r.keep {
			delete(r.at, k)
		}
	}
}
