package turn

import (
	"net"
	"sync"
	"time"
)

// Quota scopes, used as the "scope" label of parley_turn_quota_rejections_total.
const (
	quotaScopeUser  = "user"
	quotaScopeTotal = "total"
)

// pendingTTL is how long a slot granted by the quota handler waits for the
// allocation it was granted for. pion creates the allocation synchronously
// right after asking, so this only matters when creation fails (port
// exhaustion, a zero LIFETIME): then the slot frees itself.
const pendingTTL = 5 * time.Second

// quotas counts allocations per user and in total.
//
// pion asks QuotaHandler before it creates an allocation and reports
// creation and deletion through EventHandler, but tells nothing when
// creation fails in between. So a granted slot is "pending" (keyed by user
// and client address) until OnAllocationCreated confirms it, and expires if
// never confirmed; confirmed slots are released by OnAllocationDeleted.
type quotas struct {
	maxUser, maxTotal int
	now               func() time.Time

	mu      sync.Mutex
	active  map[string]int
	total   int
	pending map[string]pendingSlot
}

type pendingSlot struct {
	user    string
	expires time.Time
}

func newQuotas(maxUser, maxTotal int, now func() time.Time) *quotas {
	return &quotas{
		maxUser:  maxUser,
		maxTotal: maxTotal,
		now:      now,
		active:   make(map[string]int),
		pending:  make(map[string]pendingSlot),
	}
}

func pendingKey(user string, src net.Addr) string {
	return src.Network() + "|" + src.String() + "|" + user
}

// reserve grants a slot for user's next allocation from src, or returns
// the scope whose limit is reached.
func (q *quotas) reserve(user string, src net.Addr) (ok bool, scope string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	pendUser, pendTotal := 0, 0
	for k, p := range q.pending {
		if !now.Before(p.expires) {
			delete(q.pending, k)

			continue
		}
		pendTotal++
		if p.user == user {
			pendUser++
		}
	}
	key := pendingKey(user, src)
	if _, dup := q.pending[key]; dup {
		// A retransmitted Allocate for the same 5-tuple reuses its slot.
		pendUser--
		pendTotal--
	}
	if q.maxUser > 0 && q.active[user]+pendUser >= q.maxUser {
		return false, quotaScopeUser
	}
	if q.maxTotal > 0 && q.total+pendTotal >= q.maxTotal {
		return false, quotaScopeTotal
	}
	q.pending[key] = pendingSlot{user: user, expires: now.Add(pendingTTL)}

	return true, ""
}

// created confirms the pending slot of an allocation that now exists.
func (q *quotas) created(user string, src net.Addr) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, pendingKey(user, src))
	q.active[user]++
	q.total++
}

// deleted releases the slot of an allocation that ended.
func (q *quotas) deleted(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.active[user] <= 1 {
		delete(q.active, user)
	} else {
		q.active[user]--
	}
	if q.total > 0 {
		q.total--
	}
}
