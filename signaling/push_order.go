package signaling

import (
	"sort"
	"time"
)

// Push ordering. Concurrent senders in one conversation are committed
// together by the store's group commit and their handlers then push in
// whatever order the scheduler picks, so seq 8 could reach members before
// seq 7. Clients would see a gap, fetch it with chat_range and then drop
// the late push: correct, but a database read per reorder per member. So
// the hub holds a push that runs ahead of the next expected seq until the
// missing ones arrive, for at most pushHoldMax (a missing seq may never
// come through this server: written by another node, or its handler
// failed after the commit); then it sends what it holds and clients fill
// the gap as usual.

// pushHoldMax bounds how long a push waits for an earlier seq.
const pushHoldMax = 200 * time.Millisecond

// maxHeldPushes bounds the pushes held per conversation; beyond it the
// hub stops waiting and sends them all.
const maxHeldPushes = 256

type heldPush struct {
	msg  []byte
	skip *chatSession
}

// pushOrderedLocal queues a stored event (seq in conv) to every
// connected member's sessions on this node except skip, in seq order
// where it can. It returns how many sessions it was queued to now.
// pushOrdered (hub_relay.go) also relays it to the other nodes.
//
// Only the conversation's own lock is held while queueing: every push of
// a conversation (and its hold timer) runs under it, which is what keeps
// each session's queue in seq order.
func (h *hub) pushOrderedLocal(convID string, seq int64, msg []byte, skip *chatSession) int {
	h.mu.Lock()
	e := h.convs[convID]
	closed := h.closed
	h.mu.Unlock()
	if e == nil || closed {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return 0
	}
	if e.next == 0 || seq <= e.next {
		// In order, the first push seen, or late (its gap was given up
		// on, or it raced the index): send now.
		n := h.deliverLocked(e, msg, skip)
		if seq >= e.next {
			e.next = seq + 1
		}
		return n + h.drainLocked(e)
	}
	if e.held == nil {
		e.held = map[int64]heldPush{}
	}
	e.held[seq] = heldPush{msg: msg, skip: skip}
	if len(e.held) >= maxHeldPushes {
		return h.flushLocked(e)
	}
	if e.flush == nil {
		h.armFlushLocked(e)
	}
	return 0
}

// deliverLocked queues msg to e's sessions except skip; e.mu is held.
func (h *hub) deliverLocked(e *convEntry, msg []byte, skip *chatSession) int {
	n := 0
	for _, c := range e.conns {
		if c != skip {
			c.enqueue(msg)
			n++
		}
	}
	return n
}

// drainLocked sends held pushes that are now next in line. The *Locked
// functions of this file run with e.mu held.
func (h *hub) drainLocked(e *convEntry) int {
	n := 0
	for {
		p, ok := e.held[e.next]
		if !ok {
			break
		}
		delete(e.held, e.next)
		n += h.deliverLocked(e, p.msg, p.skip)
		e.next++
	}
	if len(e.held) == 0 {
		h.disarmFlushLocked(e)
	}
	return n
}

// flushLocked gives up waiting: it sends every held push in seq order.
func (h *hub) flushLocked(e *convEntry) int {
	seqs := make([]int64, 0, len(e.held))
	for s := range e.held {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	n := 0
	for _, s := range seqs {
		p := e.held[s]
		n += h.deliverLocked(e, p.msg, p.skip)
		e.next = s + 1
	}
	clear(e.held)
	h.disarmFlushLocked(e)
	return n
}

// armFlushLocked starts the hold timer of e (e.mu is held). Timer
// callbacks are counted in h.timers so that Run can wait for them.
func (h *hub) armFlushLocked(e *convEntry) {
	h.timers.Add(1)
	var t *time.Timer
	t = time.AfterFunc(pushHoldMax, func() {
		defer h.timers.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		// dead covers both the hub closing and the entry leaving the index.
		if e.dead || e.flush != t {
			return
		}
		e.flush = nil // this callback is running; nothing to stop
		h.flushLocked(e)
	})
	e.flush = t
}

func (h *hub) disarmFlushLocked(e *convEntry) {
	if e.flush != nil && e.flush.Stop() {
		h.timers.Done() // the callback will never run
	}
	e.flush = nil
}

// close stops every hold timer; held pushes are dropped (their sessions
// are being closed, and clients sync on reconnect). wait then waits for
// callbacks that had already started.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, e := range h.convs {
		e.mu.Lock()
		e.dead = true
		h.disarmFlushLocked(e)
		e.mu.Unlock()
	}
}

func (h *hub) wait() { h.timers.Wait() }
