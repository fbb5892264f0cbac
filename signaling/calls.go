package signaling

import (
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

type calleeState int

const (
	calleeRinging calleeState = iota
	calleeAccepted
	calleeDeclined
	calleeMissed // busy, offline, no answer or cancelled
)

// call is one invitation from the moment it rings until every callee has
// answered, the caller cancelled or the ring timeout fired.
type call struct {
	id         string
	caller     chat.Identity
	callerConn *conn // the session that placed the call
	convID     string
	kind       chat.ConversationKind
	callees    map[string]calleeState
	names      map[string]string
	room       string // set by the first accept
	timer      *time.Timer
}

// callTable holds the ringing calls. Its lock is taken before hub.mu
// (pushes happen under it) and never while calling the chat store.
type callTable struct {
	s        *Server
	mu       sync.Mutex
	calls    map[string]*call
	byCaller map[string]int // ringing calls per caller identity
	closed   bool
	timers   sync.WaitGroup // ring-timeout callbacks
}

func newCallTable(s *Server) *callTable {
	return &callTable{s: s, calls: map[string]*call{}, byCaller: map[string]int{}}
}

// callRecord is a missed or declined entry to store once the lock is
// released.
type callRecord struct {
	callID  string
	caller  chat.Identity
	callee  chat.Identity
	outcome chat.EventKind
}

func callEnded(re, callID, reason, identity string) []byte {
	return proto.Encode(proto.TypeCallEnded, re, proto.CallEndedBody{CallID: callID, Reason: reason, Identity: identity})
}

// start places a call from c.
func (t *callTable) start(c *conn, reqID string, b *proto.CallBody) *proto.Error {
	s := t.s
	me := c.chatIdentity()
	var convID string
	var kind chat.ConversationKind
	var callees []string
	ctx, cancel := s.chatCtx()
	defer cancel()
	if b.To != "" {
		if b.To == me.ID {
			return proto.BadRequest("call: cannot call yourself")
		}
		peer := chat.Identity{ID: b.To, Name: s.hub.name(b.To)}
		if peer.Name == "" {
			peer.Name = b.To
		}
		conv, err := s.chat.Direct(ctx, me, peer)
		if err != nil {
			return c.chatError("call", err)
		}
		s.announceConversation(conv, []string{me.ID, peer.ID}, nil)
		convID, kind, callees = conv.ID, chat.KindDirect, []string{b.To}
	} else {
		sums, err := s.chat.Conversations(ctx, me.ID)
		if err != nil {
			return c.chatError("call", err)
		}
		var found *chat.ConversationSummary
		for i := range sums {
			if sums[i].Conversation.ID == b.ConversationID {
				found = &sums[i]
				break
			}
		}
		if found == nil {
			return &proto.Error{Code: proto.CodeForbidden, Message: "call: not a member of this conversation"}
		}
		convID, kind = found.Conversation.ID, found.Conversation.Kind
		switch kind {
		case chat.KindDirect:
			callees = []string{proto.DirectPeer(found.Conversation.Key, me.ID)}
		case chat.KindGroup:
			// Only connected members can ring; the others learn of the
			// call from the conversation when it is recorded as missed.
			for _, id := range s.hub.members(convID) {
				if id != me.ID {
					callees = append(callees, id)
				}
			}
			sort.Strings(callees)
		default:
			return proto.BadRequest("call: room conversations are joined, not rung")
		}
	}
	if len(callees) > s.cfg.MaxCallCallees {
		return &proto.Error{Code: proto.CodeTooLarge, Message: "call: more callees than max_call_callees"}
	}

	cl := &call{
		id: uuid.NewString(), caller: me, callerConn: c, convID: convID, kind: kind,
		callees: map[string]calleeState{}, names: map[string]string{},
	}
	ringing := proto.CallRingingBody{CallID: cl.id, ConversationID: convID, Ringing: []string{}, Busy: []string{}, Offline: []string{}}
	var records []callRecord

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return &proto.Error{Code: proto.CodeUnavailable, Message: "server is shutting down"}
	}
	if t.byCaller[me.ID] >= s.cfg.MaxPendingCalls {
		t.mu.Unlock()
		return &proto.Error{Code: proto.CodeCallLimit, Message: "too many calls ringing at once (max_pending_calls)"}
	}
	for _, id := range callees {
		name := s.hub.name(id)
		if name == "" {
			name = id
		}
		cl.names[id] = name
		switch s.hub.status(id) {
		case proto.PresenceOnline:
			cl.callees[id] = calleeRinging
			ringing.Ringing = append(ringing.Ringing, id)
		case proto.PresenceInCall:
			cl.callees[id] = calleeMissed
			ringing.Busy = append(ringing.Busy, id)
			records = append(records, t.record(cl, id, chat.EventCallMissed))
		default:
			cl.callees[id] = calleeMissed
			ringing.Offline = append(ringing.Offline, id)
			records = append(records, t.record(cl, id, chat.EventCallMissed))
		}
	}
	if len(ringing.Ringing) == 0 {
		t.mu.Unlock()
		reason := proto.CallEndOffline
		if len(ringing.Busy) > 0 {
			reason = proto.CallEndBusy
		}
		c.enqueue(proto.Encode(proto.TypeCallRinging, reqID, ringing))
		c.enqueue(callEnded("", cl.id, reason, ""))
		t.store(records)
		return nil
	}
	t.calls[cl.id] = cl
	t.byCaller[me.ID]++
	s.metrics.ringing.Inc()
	timeout := s.cfg.CallRingTimeout
	t.timers.Add(1)
	id := cl.id
	cl.timer = time.AfterFunc(timeout, func() {
		defer t.timers.Done()
		t.timeout(id)
	})
	c.enqueue(proto.Encode(proto.TypeCallRinging, reqID, ringing))
	ring := proto.Encode(proto.TypeRing, "", proto.RingBody{
		CallID: cl.id, Caller: proto.IdentityView{Identity: me.ID, Name: me.Name},
		ConversationID: convID, Kind: string(kind), TimeoutMs: timeout.Milliseconds(),
	})
	for _, id := range ringing.Ringing {
		s.hub.pushIdentity(id, ring, nil)
	}
	t.mu.Unlock()
	t.store(records)
	return nil
}

// record describes the history entry for a callee who declined or
// missed the call (and counts it).
func (t *callTable) record(cl *call, callee string, outcome chat.EventKind) callRecord {
	label := "missed"
	if outcome == chat.EventCallDeclined {
		label = "declined"
	}
	t.s.metrics.calls.WithLabelValues(label).Inc()
	return cl.record(callee, outcome)
}

func (cl *call) record(callee string, outcome chat.EventKind) callRecord {
	return callRecord{callID: cl.id, caller: cl.caller, callee: chat.Identity{ID: callee, Name: cl.names[callee]}, outcome: outcome}
}

// ringingLocked lists callees still ringing.
func (cl *call) ringingLocked() []string {
	var out []string
	for id, st := range cl.callees {
		if st == calleeRinging {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (cl *call) anyAcceptedLocked() bool {
	for _, st := range cl.callees {
		if st == calleeAccepted {
			return true
		}
	}
	return false
}

// removeLocked forgets cl and stops its timer.
func (t *callTable) removeLocked(cl *call) {
	if t.calls[cl.id] != cl {
		return
	}
	delete(t.calls, cl.id)
	t.s.metrics.ringing.Dec()
	if t.byCaller[cl.caller.ID]--; t.byCaller[cl.caller.ID] <= 0 {
		delete(t.byCaller, cl.caller.ID)
	}
	if cl.timer != nil && cl.timer.Stop() {
		t.timers.Done() // the callback will never run
	}
}

// answer handles call_accept, call_decline and call_cancel.
func (t *callTable) answer(c *conn, reqID, typ, callID string) *proto.Error {
	var records []callRecord
	var perr *proto.Error
	t.mu.Lock()
	cl := t.calls[callID]
	switch {
	case cl == nil:
		perr = &proto.Error{Code: proto.CodeNotFound, Message: "no such ringing call"}
	case typ == proto.TypeCallCancel:
		perr, records = t.cancelLocked(c, reqID, cl)
	case typ == proto.TypeCallAccept:
		perr = t.acceptLocked(c, reqID, cl)
	default:
		perr, records = t.declineLocked(c, reqID, cl)
	}
	t.mu.Unlock()
	t.store(records)
	return perr
}

func (t *callTable) acceptLocked(c *conn, reqID string, cl *call) *proto.Error {
	s := t.s
	me := c.identity()
	if st, ok := cl.callees[me]; !ok || st != calleeRinging {
		return &proto.Error{Code: proto.CodeNotFound, Message: "no such ringing call for you"}
	}
	first := cl.room == ""
	if first {
		cl.room = "call-" + uuid.NewString()
	}
	mine, err := t.mint(me, c.name, cl.room)
	if err != nil {
		return &proto.Error{Code: proto.CodeInternal, Message: "could not issue a call token"}
	}
	if first {
		theirs, err := t.mint(cl.caller.ID, cl.caller.Name, cl.room)
		if err != nil {
			cl.room = ""
			return &proto.Error{Code: proto.CodeInternal, Message: "could not issue a call token"}
		}
		cl.callerConn.enqueue(proto.Encode(proto.TypeCallAccepted, "", proto.CallAcceptedBody{
			CallID: cl.id, ConversationID: cl.convID, Room: cl.room, Token: theirs,
			Peer: proto.IdentityView{Identity: me, Name: c.name},
		}))
	}
	cl.callees[me] = calleeAccepted
	s.metrics.calls.WithLabelValues("accepted").Inc()
	c.enqueue(proto.Encode(proto.TypeCallAccepted, reqID, proto.CallAcceptedBody{
		CallID: cl.id, ConversationID: cl.convID, Room: cl.room, Token: mine,
		Peer: proto.IdentityView{Identity: cl.caller.ID, Name: cl.caller.Name},
	}))
	s.hub.pushIdentity(me, callEnded("", cl.id, proto.CallEndAnsweredElsewhere, ""), c)
	if len(cl.ringingLocked()) == 0 {
		t.removeLocked(cl)
	}
	return nil
}

func (t *callTable) declineLocked(c *conn, reqID string, cl *call) (*proto.Error, []callRecord) {
	s := t.s
	me := c.identity()
	if st, ok := cl.callees[me]; !ok || st != calleeRinging {
		return &proto.Error{Code: proto.CodeNotFound, Message: "no such ringing call for you"}, nil
	}
	cl.callees[me] = calleeDeclined
	c.enqueue(callEnded(reqID, cl.id, proto.CallEndDeclined, ""))
	s.hub.pushIdentity(me, callEnded("", cl.id, proto.CallEndDeclinedElsewhere, ""), c)
	records := []callRecord{t.record(cl, me, chat.EventCallDeclined)}
	if cl.kind == chat.KindGroup {
		// The caller sees each decline of a group call; the call goes
		// on while someone still rings.
		cl.callerConn.enqueue(callEnded("", cl.id, proto.CallEndDeclined, me))
	}
	if len(cl.ringingLocked()) == 0 {
		if !cl.anyAcceptedLocked() {
			cl.callerConn.enqueue(callEnded("", cl.id, proto.CallEndDeclined, ""))
		}
		t.removeLocked(cl)
	}
	return nil, records
}

func (t *callTable) cancelLocked(c *conn, reqID string, cl *call) (*proto.Error, []callRecord) {
	if c.identity() != cl.caller.ID {
		return &proto.Error{Code: proto.CodeNotFound, Message: "no such call of yours"}, nil
	}
	records := t.endRingingLocked(cl, proto.CallEndCancelled)
	c.enqueue(callEnded(reqID, cl.id, proto.CallEndCancelled, ""))
	if c != cl.callerConn {
		cl.callerConn.enqueue(callEnded("", cl.id, proto.CallEndCancelled, ""))
	}
	t.removeLocked(cl)
	return nil, records
}

// endRingingLocked stops the ringing on every callee still ringing, each
// of whom missed the call.
func (t *callTable) endRingingLocked(cl *call, reason string) []callRecord {
	var records []callRecord
	for _, id := range cl.ringingLocked() {
		cl.callees[id] = calleeMissed
		t.s.hub.pushIdentity(id, callEnded("", cl.id, reason, ""), nil)
		records = append(records, t.record(cl, id, chat.EventCallMissed))
	}
	return records
}

// timeout ends a call nobody (or not everybody) answered in time.
func (t *callTable) timeout(callID string) {
	t.mu.Lock()
	cl := t.calls[callID]
	if cl == nil || t.closed {
		t.mu.Unlock()
		return
	}
	cl.timer = nil // this callback is running; nothing to stop
	records := t.endRingingLocked(cl, proto.CallEndNoAnswer)
	if !cl.anyAcceptedLocked() {
		cl.callerConn.enqueue(callEnded("", cl.id, proto.CallEndNoAnswer, ""))
	}
	t.removeLocked(cl)
	t.mu.Unlock()
	t.store(records)
}

// sessionGone ends the calls placed by a session that disconnected: the
// caller hung up, so the callees missed the call.
func (t *callTable) sessionGone(c *conn) {
	var records []callRecord
	t.mu.Lock()
	for _, cl := range t.calls {
		if cl.callerConn == c {
			records = append(records, t.endRingingLocked(cl, proto.CallEndCancelled)...)
			t.removeLocked(cl)
		}
	}
	t.mu.Unlock()
	t.store(records)
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

func (t *callTable) wait() { t.timers.Wait() }

// mint issues the token for a fresh call room: publish, subscribe and
// chat, short-lived because the client joins with it at once.
func (t *callTable) mint(identity, name, room string) (string, error) {
	keys := t.s.keys
	return keys.Issue(keys.DefaultKeyID(), auth.Claims{
		Identity: identity, Name: name, Room: room,
		Grants: auth.Grants{Publish: true, Subscribe: true, Chat: true},
	}, t.s.cfg.CallTokenTTL)
}

// store writes missed and declined entries into the direct conversation
// of caller and callee and pushes each like any message. It runs without
// locks because it waits for the database.
func (t *callTable) store(records []callRecord) {
	s := t.s
	for _, r := range records {
		ctx, cancel := s.chatCtx()
		conv, err := s.chat.Direct(ctx, r.caller, r.callee)
		if err == nil {
			var ack chat.Ack
			ack, err = s.chat.RecordCall(ctx, chat.CallRecord{CallID: r.callID, Caller: r.caller, Callee: r.callee, Outcome: r.outcome})
			if err == nil {
				s.announceConversation(conv, []string{r.caller.ID, r.callee.ID}, nil)
				if !ack.Duplicate {
					s.pushMessage(chat.Message{
						ServerID: ack.ServerID, ConversationID: conv.ID, Seq: ack.Seq, ClientMsgID: ack.ClientMsgID,
						Sender: r.caller, Kind: r.outcome, CreatedAt: ack.CreatedAt,
					}, nil)
				}
			}
		}
		cancel()
		if err != nil {
			s.log.Error("recording call outcome", "call", r.callID, "outcome", string(r.outcome), "err", err)
		}
	}
}
