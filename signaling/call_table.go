package signaling

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// callPresence is what the call table needs of the messaging hub: who is
// online, and reaching every session of an identity. status may ask
// Redis in cluster mode: the table calls it without its lock.
type callPresence interface {
	status(identity string) string
	displayName(identity string) string
	// pushCall queues msg, about call callID, to every session of
	// identity but skip.
	pushCall(callID, identity string, msg []byte, skip outbound) int
}

// callWatcher is a callPresence that hears of each call that rings
// (cluster mode: the caller's other nodes learn where the call lives, so
// a cancel from the caller's other devices reaches it).
type callWatcher interface {
	placed(callID, caller string)
}

// callStatuses is a callPresence that reads many identities' status at
// once (cluster mode: one round trip to Redis, not one per callee).
type callStatuses interface {
	statuses(identities []string) map[string]string
}

// callTableConfig bounds the call table.
type callTableConfig struct {
	maxPending  int           // ringing calls per caller
	ringTimeout time.Duration // how long a call rings
}

// callTable holds the ringing calls, runs the transitions of call.go
// under its lock and executes their effects: messages are queued under
// the lock (so each call's messages keep their order), history is stored
// after it is released (store waits for the database).
//
// Its lock is taken before the hub's (pushes happen under it) and never
// while calling the chat store.
type callTable struct {
	cfg      callTableConfig
	env      callEnv
	presence callPresence
	store    func([]callRecord)
	metrics  *metrics

	mu       sync.Mutex
	calls    map[string]*call
	timers   map[string]*time.Timer // ring timeouts, by call id
	byCaller map[string]int         // ringing calls per caller identity
	closed   bool
	running  sync.WaitGroup // ring-timeout callbacks
}

func newCallTable(cfg callTableConfig, env callEnv, presence callPresence, store func([]callRecord), m *metrics) *callTable {
	return &callTable{cfg: cfg, env: env, presence: presence, store: store, metrics: m,
		calls: map[string]*call{}, timers: map[string]*time.Timer{}, byCaller: map[string]int{}}
}

// place rings callees (identities, of conversation convID of kind) for
// caller, who called from session from with request reqID.
func (t *callTable) place(caller chat.Identity, from outbound, reqID, convID string, kind chat.ConversationKind, callees []string) *proto.Error {
	cl := &call{
		id: uuid.NewString(), caller: caller, from: from, convID: convID, kind: kind,
		callees: map[string]calleeState{}, names: map[string]string{}, timeout: t.cfg.ringTimeout,
	}
	var statuses map[string]string
	if many, ok := t.presence.(callStatuses); ok && len(callees) > 1 {
		statuses = many.statuses(callees)
	} else {
		statuses = make(map[string]string, len(callees))
		for _, id := range callees {
			statuses[id] = t.presence.status(id)
		}
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return &proto.Error{Code: proto.CodeUnavailable, Message: "server is shutting down"}
	}
	if t.byCaller[caller.ID] >= t.cfg.maxPending {
		t.mu.Unlock()
		return &proto.Error{Code: proto.CodeCallLimit, Message: "too many calls ringing at once (max_pending_calls)"}
	}
	for _, id := range callees {
		cl.names[id] = t.presence.displayName(id)
	}
	effects := cl.ring(reqID, func(id string) string { return statuses[id] })
	if !cl.over() {
		t.calls[cl.id] = cl
		t.byCaller[caller.ID]++
		t.metrics.ringing.Inc()
		t.running.Add(1)
		id := cl.id
		t.timers[id] = time.AfterFunc(t.cfg.ringTimeout, func() {
			defer t.running.Done()
			t.timeout(id)
		})
		if w, ok := t.presence.(callWatcher); ok {
			w.placed(id, caller.ID)
		}
	}
	t.finish(effects)
	return nil
}

// answer handles call_accept, call_decline and call_cancel from session
// from of identity me.
func (t *callTable) answer(me chat.Identity, from outbound, reqID, typ, callID string) *proto.Error {
	t.mu.Lock()
	cl := t.calls[callID]
	if cl == nil {
		t.mu.Unlock()
		return &proto.Error{Code: proto.CodeNotFound, Message: "no such ringing call"}
	}
	var effects []effect
	var perr *proto.Error
	switch typ {
	case proto.TypeCallCancel:
		effects, perr = cl.cancel(me.ID, from, reqID) // ends all ringing
	case proto.TypeCallAccept:
		effects, perr = cl.accept(me, from, reqID, t.env)
	default:
		effects, perr = cl.decline(me.ID, from, reqID)
	}
	if perr == nil && cl.over() {
		t.removeLocked(cl)
	}
	t.finish(effects)
	return perr
}

// timeout ends a call nobody (or not everybody) answered in time.
func (t *callTable) timeout(callID string) {
	t.mu.Lock()
	cl := t.calls[callID]
	if cl == nil || t.closed {
		t.mu.Unlock()
		return
	}
	delete(t.timers, callID) // this callback is running; nothing to stop
	effects := cl.expire()
	t.removeLocked(cl)
	t.finish(effects)
}

// sessionGone ends the calls placed by a session that disconnected: the
// caller hung up, so the callees missed the call.
func (t *callTable) sessionGone(from outbound) {
	t.mu.Lock()
	var effects []effect
	for _, cl := range t.calls {
		if cl.from == from {
			effects = append(effects, cl.callerGone()...)
			t.removeLocked(cl)
		}
	}
	t.finish(effects)
}

// finish executes effects: messages and counts now, under t.mu, which it
// then releases; records after.
func (t *callTable) finish(effects []effect) {
	var records []callRecord
	for _, e := range effects {
		switch {
		case e.msg == nil:
		case e.to != nil:
			e.to.enqueue(e.msg)
		default:
			t.presence.pushCall(e.call, e.identity, e.msg, e.skip)
		}
		if e.outcome != "" {
			t.metrics.calls.WithLabelValues(e.outcome).Inc()
		}
		if e.record != nil {
			records = append(records, *e.record)
		}
	}
	t.mu.Unlock()
	if len(records) > 0 {
		t.store(records)
	}
}

// removeLocked forgets cl and stops its timer.
func (t *callTable) removeLocked(cl *call) {
	if t.calls[cl.id] != cl {
		return
	}
	delete(t.calls, cl.id)
	t.metrics.ringing.Dec()
	if t.byCaller[cl.caller.ID]--; t.byCaller[cl.caller.ID] <= 0 {
		delete(t.byCaller, cl.caller.ID)
	}
	if tm := t.timers[cl.id]; tm != nil {
		delete(t.timers, cl.id)
		if tm.Stop() {
			t.running.Done() // the callback will never run
		}
	}
}

// shutdown stops every ring timer; wait then waits for callbacks that had
// already started. Ringing clients get "bye" from the server shutdown.
func (t *callTable) shutdown() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, cl := range t.calls {
		t.removeLocked(cl)
	}
}

func (t *callTable) wait() { t.running.Wait() }

// pending reports how many calls ring now.
func (t *callTable) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}
