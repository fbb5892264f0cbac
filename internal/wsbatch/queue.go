package wsbatch

import (
	"sync"
	"time"
)

// Queue is one connection's send queue. Anyone may Push, which never
// blocks; one writer goroutine waits on Wake and writes batches with
// Begin, Take, Recycle, Flush and End.
//
// The queue is a slice rather than a channel so that an idle connection
// holds no slots, only what its bursts needed (spare is the writer's
// last batch, reused).
type Queue struct {
	bc  *Conn // nil: the socket is not a Conn (tests); no direct writes
	max int   // a queue this long refuses more (Full)

	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte
	writing bool // the writer has a batch open: no direct writes
	// wake has a token whenever queue went from empty to not empty (or a
	// direct write left a tail) and the writer has not taken it yet.
	wake chan struct{}
}

// NewQueue makes a queue of at most max messages writing to bc (nil for
// a socket that is not a Conn).
func NewQueue(bc *Conn, max int) *Queue {
	return &Queue{bc: bc, max: max, wake: make(chan struct{}, 1)}
}

// PushResult says what Push did with a message.
type PushResult int

const (
	// Queued: the writer will send it.
	Queued PushResult = iota
	// Sent: written to the socket directly (what the socket did not take
	// is pending and the writer was woken).
	Sent
	// Full: the queue is full; the message was dropped and the client
	// cannot keep up.
	Full
	// Failed: a direct write failed; the socket is broken.
	Failed
)

// Push queues msg, or writes it at once when the connection is idle and
// the socket takes it without waiting. Err is set only with Failed.
func (q *Queue) Push(msg []byte) (PushResult, error) {
	q.mu.Lock()
	if len(q.queue) == 0 && !q.writing && q.bc != nil {
		handled, wake, err := q.bc.TryDirect(msg)
		if handled {
			q.mu.Unlock()
			switch {
			case err != nil:
				return Failed, err
			case wake:
				q.signal()
			}
			return Sent, nil
		}
	}
	if len(q.queue) >= q.max {
		q.mu.Unlock()
		return Full, nil
	}
	q.queue = append(q.queue, msg)
	first := len(q.queue) == 1
	q.mu.Unlock()
	if first {
		q.signal()
	}
	return Queued, nil
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Wake has a value when there is something to write.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

// Begin opens a batch that must be flushed by deadline: from now until
// End, pushes queue instead of writing directly.
func (q *Queue) Begin(deadline time.Time) {
	q.mu.Lock()
	q.writing = true
	q.mu.Unlock()
	if q.bc != nil {
		q.bc.Begin(deadline)
	}
}

// Take empties the queue and returns what was in it.
func (q *Queue) Take() [][]byte {
	q.mu.Lock()
	out := q.queue
	q.queue, q.spare = q.spare, nil
	q.mu.Unlock()
	return out
}

// maxSpareQueue is the largest batch array kept for reuse; a burst's
// bigger one is left to the GC so an idle connection stays small.
const maxSpareQueue = 64

// Recycle keeps a written batch's array for the next one.
func (q *Queue) Recycle(b [][]byte) {
	if cap(b) > maxSpareQueue {
		return
	}
	clear(b) // the messages may be large; don't keep them alive
	q.mu.Lock()
	if q.spare == nil {
		q.spare = b[:0]
	}
	q.mu.Unlock()
}

// Flush sends what the open batch holds.
func (q *Queue) Flush() error {
	if q.bc != nil {
		return q.bc.Flush()
	}
	return nil
}

// End allows direct writes again after a successful Flush. A writer that
// failed, or wrote a close frame, never calls it: nothing may follow.
func (q *Queue) End() {
	q.mu.Lock()
	q.writing = false
	q.mu.Unlock()
}
