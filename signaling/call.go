package signaling

import (
	"slices"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// The call state machine. A call is plain data; its transitions (ring,
// accept, decline, cancel, timeout, and the caller's session going away)
// change it and return effects (messages to sessions or identities,
// history to store, outcomes to count) without doing any I/O. The
// callTable (call_table.go) runs transitions under its lock and executes
// their effects; tests run them with fakes (call_test.go).

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
	id      string
	caller  chat.Identity
	from    outbound // the session that placed the call
	convID  string
	kind    chat.ConversationKind
	callees map[string]calleeState
	names   map[string]string // callee display names
	room    string            // set by the first accept
	timeout time.Duration     // ring timeout, told to the callees
}

// effect is one thing a transition wants done.
type effect struct {
	// to is one session; without it, msg goes to every session of
	// identity except skip.
	to       outbound
	identity string
	skip     outbound
	msg      []byte
	// record is a missed or declined entry to store once the lock is
	// released.
	record *callRecord
	// outcome is a calls_total label to count (accepted, declined, missed).
	outcome string
	// call is the call a push is about: in cluster mode the node of the
	// callee's session learns from it where to send the answer
	// (call_cluster.go).
	call string
}

// callRecord is a missed or declined entry for the history.
type callRecord struct {
	callID  string
	caller  chat.Identity
	callee  chat.Identity
	outcome chat.EventKind
}

// callEnv is what transitions need from outside: token minting and room
// naming, injected so that tests decide both.
type callEnv struct {
	mint    func(identity, name, room string) (string, error)
	newRoom func() string
}

func callEnded(re, callID, reason, identity string) []byte {
	return proto.Encode(proto.TypeCallEnded, re, proto.CallEndedBody{CallID: callID, Reason: reason, Identity: identity})
}

func send(to outbound, msg []byte) effect { return effect{to: to, msg: msg} }

func (cl *call) push(identity string, skip outbound, msg []byte) effect {
	return effect{identity: identity, skip: skip, msg: msg, call: cl.id}
}

// missed records that callee missed the call (and counts it).
func (cl *call) missed(callee string) effect {
	cl.callees[callee] = calleeMissed
	return effect{outcome: "missed", record: cl.record(callee, chat.EventCallMissed)}
}

func (cl *call) record(callee string, outcome chat.EventKind) *callRecord {
	return &callRecord{callID: cl.id, caller: cl.caller, callee: chat.Identity{ID: callee, Name: cl.names[callee]}, outcome: outcome}
}

// ringing lists the callees still ringing, sorted.
func (cl *call) ringing() []string {
	var out []string
	for id, st := range cl.callees {
		if st == calleeRinging {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// over reports whether nobody rings any more: the call leaves the table.
func (cl *call) over() bool { return len(cl.ringing()) == 0 }

func (cl *call) anyAccepted() bool {
	for _, st := range cl.callees {
		if st == calleeAccepted {
			return true
		}
	}
	return false
}

// ring classifies the callees by presence (only online ones ring; busy
// and offline ones missed the call), answers the caller's request reqID
// with call_ringing and rings every session of each ringing callee. If
// nobody rings, the caller also gets call_ended busy or offline.
func (cl *call) ring(reqID string, presence func(identity string) string) []effect {
	body := proto.CallRingingBody{CallID: cl.id, ConversationID: cl.convID, Ringing: []string{}, Busy: []string{}, Offline: []string{}}
	var records []effect
	ids := make([]string, 0, len(cl.names))
	for id := range cl.names {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		switch presence(id) {
		case proto.PresenceOnline:
			cl.callees[id] = calleeRinging
			body.Ringing = append(body.Ringing, id)
		case proto.PresenceInCall:
			body.Busy = append(body.Busy, id)
			records = append(records, cl.missed(id))
		default:
			body.Offline = append(body.Offline, id)
			records = append(records, cl.missed(id))
		}
	}
	effects := []effect{send(cl.from, proto.Encode(proto.TypeCallRinging, reqID, body))}
	if len(body.Ringing) == 0 {
		reason := proto.CallEndOffline
		if len(body.Busy) > 0 {
			reason = proto.CallEndBusy
		}
		effects = append(effects, send(cl.from, callEnded("", cl.id, reason, "")))
	} else {
		ring := proto.Encode(proto.TypeRing, "", proto.RingBody{
			CallID: cl.id, Caller: proto.IdentityView{Identity: cl.caller.ID, Name: cl.caller.Name},
			ConversationID: cl.convID, Kind: string(cl.kind), TimeoutMs: cl.timeout.Milliseconds(),
		})
		for _, id := range body.Ringing {
			effects = append(effects, cl.push(id, nil, ring))
		}
	}
	return append(effects, records...)
}

// errNoRingingCall answers an accept or decline of a call that does not
// ring for the sender.
func errNoRingingCall() *proto.Error {
	return &proto.Error{Code: proto.CodeNotFound, Message: "no such ringing call for you"}
}

// accept: callee me, on session from, accepts (request reqID). The first
// accept makes the call room; every accepting callee gets a token for
// it, the caller one with the first accept. The callee's other sessions
// stop ringing.
func (cl *call) accept(me chat.Identity, from outbound, reqID string, env callEnv) ([]effect, *proto.Error) {
	if st, ok := cl.callees[me.ID]; !ok || st != calleeRinging {
		return nil, errNoRingingCall()
	}
	first := cl.room == ""
	room := cl.room
	if first {
		room = env.newRoom()
	}
	mine, err := env.mint(me.ID, me.Name, room)
	if err != nil {
		return nil, &proto.Error{Code: proto.CodeInternal, Message: "could not issue a call token"}
	}
	var effects []effect
	if first {
		theirs, err := env.mint(cl.caller.ID, cl.caller.Name, room)
		if err != nil {
			return nil, &proto.Error{Code: proto.CodeInternal, Message: "could not issue a call token"}
		}
		effects = append(effects, send(cl.from, proto.Encode(proto.TypeCallAccepted, "", proto.CallAcceptedBody{
			CallID: cl.id, ConversationID: cl.convID, Room: room, Token: theirs,
			Peer: proto.IdentityView{Identity: me.ID, Name: me.Name},
		})))
	}
	cl.room = room
	cl.callees[me.ID] = calleeAccepted
	return append(effects,
		effect{outcome: "accepted"},
		send(from, proto.Encode(proto.TypeCallAccepted, reqID, proto.CallAcceptedBody{
			CallID: cl.id, ConversationID: cl.convID, Room: room, Token: mine,
			Peer: proto.IdentityView{Identity: cl.caller.ID, Name: cl.caller.Name},
		})),
		cl.push(me.ID, from, callEnded("", cl.id, proto.CallEndAnsweredElsewhere, "")),
	), nil
}

// decline: callee me, on session from, declines (request reqID). In a
// group call the caller hears of each decline, and of the end once
// nobody rings and nobody accepted.
func (cl *call) decline(me string, from outbound, reqID string) ([]effect, *proto.Error) {
	if st, ok := cl.callees[me]; !ok || st != calleeRinging {
		return nil, errNoRingingCall()
	}
	cl.callees[me] = calleeDeclined
	effects := []effect{
		send(from, callEnded(reqID, cl.id, proto.CallEndDeclined, "")),
		cl.push(me, from, callEnded("", cl.id, proto.CallEndDeclinedElsewhere, "")),
		{outcome: "declined", record: cl.record(me, chat.EventCallDeclined)},
	}
	if cl.kind == chat.KindGroup {
		effects = append(effects, send(cl.from, callEnded("", cl.id, proto.CallEndDeclined, me)))
	}
	if cl.over() && !cl.anyAccepted() {
		effects = append(effects, send(cl.from, callEnded("", cl.id, proto.CallEndDeclined, "")))
	}
	return effects, nil
}

// cancel: the caller me, on session from, hangs up (request reqID).
func (cl *call) cancel(me string, from outbound, reqID string) ([]effect, *proto.Error) {
	if me != cl.caller.ID {
		return nil, &proto.Error{Code: proto.CodeNotFound, Message: "no such call of yours"}
	}
	effects := cl.endRinging(proto.CallEndCancelled)
	effects = append(effects, send(from, callEnded(reqID, cl.id, proto.CallEndCancelled, "")))
	if from != cl.from {
		effects = append(effects, send(cl.from, callEnded("", cl.id, proto.CallEndCancelled, "")))
	}
	return effects, nil
}

// expire ends the ringing when nobody (or not everybody) answered in
// time; the caller is told unless someone accepted.
func (cl *call) expire() []effect {
	effects := cl.endRinging(proto.CallEndNoAnswer)
	if !cl.anyAccepted() {
		effects = append(effects, send(cl.from, callEnded("", cl.id, proto.CallEndNoAnswer, "")))
	}
	return effects
}

// callerGone: the session that placed the call disconnected, which
// cancels it.
func (cl *call) callerGone() []effect { return cl.endRinging(proto.CallEndCancelled) }

// endRinging stops the ringing on every callee still ringing, each of
// whom missed the call.
func (cl *call) endRinging(reason string) []effect {
	var effects []effect
	for _, id := range cl.ringing() {
		effects = append(effects, cl.push(id, nil, callEnded("", cl.id, reason, "")), cl.missed(id))
	}
	return effects
}
