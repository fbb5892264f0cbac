package signaling

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// Calls across nodes (cluster mode, docs/cluster.md). A call lives in
// the call table of the node its caller placed it on. Its pushes to an
// identity (ring, call_ended) also go out on the identity's relay topic
// with the call id and that node's id, so the callee's sessions on other
// nodes ring, and those nodes remember which node a ringing call lives
// on. A call that rings is also announced, without a message, on the
// caller's identity topic, so the nodes of the caller's other devices
// know it too. An answer (call_accept, call_decline, call_cancel) sent
// to such a node is passed to the call's node on its own topic ("n:<node id>"),
// where the call table runs it for a stand-in of the answering session
// (remoteSession); what the table sends that session goes back on the
// answering node's topic to that one session. The ringing is decided on
// the merged presence, so a callee connected only to another node rings
// and one in a call anywhere is busy.

const (
	relayCall       = "call"   // a call push to Identity's sessions but Skip; Node hosts Call
	relaySession    = "sess"   // Msg for the session Sid of Identity, on the node whose topic carries it
	relayCallAnswer = "answer" // Identity's session Sid on Node answers Call with Type (request Re)
)

func topicNode(id string) string { return "n:" + id }

// remoteCallGrace keeps a ringing call's node known a little past the
// ring timeout, for an answer sent just before it.
const remoteCallGrace = 10 * time.Second

// maxRemoteCalls bounds the calls a node remembers as ringing here from
// elsewhere; beyond it a new one rings but cannot be answered from here
// (the caller's ring times out).
const maxRemoteCalls = 10_000

// callAnswerQueue bounds the answers from other nodes waiting for the
// call table; a full queue drops one (its sender's client gets no reply
// and the ring times out), so the bus's goroutine never waits.
const callAnswerQueue = 256

type clusterCalls struct {
	s    *Server
	self string

	mu      sync.Mutex
	origins map[string]callOrigin // by call id

	answers chan relayEvent
}

type callOrigin struct {
	node  string
	until time.Time
}

func newClusterCalls(s *Server, self string) *clusterCalls {
	return &clusterCalls{s: s, self: self, origins: map[string]callOrigin{}, answers: make(chan relayEvent, callAnswerQueue)}
}

// clusterCallPresence is the hub as a cluster node's call table sees it.
type clusterCallPresence struct {
	h  *hub
	cp *clusterPresence
	cc *clusterCalls
}

func (p clusterCallPresence) status(identity string) string { return p.cp.status(identity) }

// statuses reads the merged status of a group call's callees in one
// round trip (absent: offline).
func (p clusterCallPresence) statuses(identities []string) map[string]string {
	out := make(map[string]string, len(identities))
	for id, st := range p.cp.read(identities) {
		out[id] = st.Status
	}
	return out
}

func (p clusterCallPresence) displayName(identity string) string { return p.h.displayName(identity) }

func (p clusterCallPresence) pushCall(callID, identity string, msg []byte, skip outbound) int {
	ev := relayEvent{Kind: relayCall, Identity: identity, Msg: msg, Call: callID, Node: p.cc.self}
	if rs, ok := skip.(remoteSession); ok {
		ev.Skip = rs.sid
	}
	p.h.publish(topicIdentity(identity), ev)
	return p.h.pushIdentityLocal(identity, msg, skip)
}

// placed tells the nodes of the caller's sessions where callID lives: a
// relayCall without a message, which they only remember.
func (p clusterCallPresence) placed(callID, caller string) {
	p.h.publish(topicIdentity(caller), relayEvent{Kind: relayCall, Identity: caller, Call: callID, Node: p.cc.self})
}

// remoteSession stands in, in the call table, for a session on another
// node that answered a call placed here.
type remoteSession struct {
	cc                  *clusterCalls
	node, identity, sid string
}

func (r remoteSession) enqueue(msg []byte) {
	r.cc.s.hub.publish(topicNode(r.node), relayEvent{Kind: relaySession, Identity: r.identity, Sid: r.sid, Msg: msg})
}

func (r remoteSession) sendError(re string, perr *proto.Error) {
	r.enqueue(proto.Encode(proto.TypeError, re, proto.ErrorBody{Code: perr.Code, Message: perr.Message, URL: perr.URL}))
}

// sendBye: the table never says goodbye to a callee's session.
func (r remoteSession) sendBye(string) {}

// forward passes an answer to a call ringing here from another node to
// that node; false when the call is not one of those.
func (cc *clusterCalls) forward(ss *session, reqID, typ, callID string) bool {
	cc.mu.Lock()
	o, ok := cc.origins[callID]
	cc.mu.Unlock()
	if !ok || time.Now().After(o.until) {
		return false
	}
	cc.s.hub.publish(topicNode(o.node), relayEvent{
		Kind: relayCallAnswer, Call: callID, Type: typ, Identity: ss.identity(), Name: ss.name,
		Node: cc.self, Sid: ss.sid, Re: reqID,
	})
	return true
}

// remember notes that callID, ringing here, lives on node.
func (cc *clusterCalls) remember(callID, node string) {
	now := time.Now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.origins[callID]; !ok && len(cc.origins) >= maxRemoteCalls {
		for id, o := range cc.origins {
			if now.After(o.until) {
				delete(cc.origins, id)
			}
		}
		if len(cc.origins) >= maxRemoteCalls {
			return
		}
	}
	cc.origins[callID] = callOrigin{node: node, until: now.Add(cc.s.cfg.CallRingTimeout + remoteCallGrace)}
}

// forget drops the calls whose ringing is over.
func (cc *clusterCalls) forget() {
	now := time.Now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for id, o := range cc.origins {
		if now.After(o.until) {
			delete(cc.origins, id)
		}
	}
}

// deliverRemote applies a call event from another node; it runs on the
// bus's goroutine, so answers are queued for run.
func (cc *clusterCalls) deliverRemote(ev relayEvent) int {
	h := cc.s.hub
	switch ev.Kind {
	case relayCall:
		if ev.Call == "" || ev.Node == "" {
			return 0
		}
		cc.remember(ev.Call, ev.Node)
		if len(ev.Msg) == 0 {
			return 0 // a call placed by Identity (placed)
		}
		return h.pushIdentityLocalBut(ev.Identity, ev.Msg, ev.Skip)
	case relaySession:
		return h.pushSession(ev.Identity, ev.Sid, ev.Msg)
	case relayCallAnswer:
		switch ev.Type {
		case proto.TypeCallAccept, proto.TypeCallDecline, proto.TypeCallCancel:
		default:
			return 0
		}
		if ev.Call == "" || ev.Node == "" || ev.Sid == "" || ev.Identity == "" {
			return 0
		}
		select {
		case cc.answers <- ev:
		default:
			cc.s.log.Warn("cluster calls: answer queue full, answer dropped", "call", ev.Call)
		}
	}
	return 0
}

// run answers the calls of this node for sessions on other nodes until
// ctx ends. The call table may store history (PostgreSQL), which is why
// this is not done on the bus's goroutine.
func (cc *clusterCalls) run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cc.forget()
		case ev := <-cc.answers:
			from := remoteSession{cc: cc, node: ev.Node, identity: ev.Identity, sid: ev.Sid}
			me := chat.Identity{ID: ev.Identity, Name: ev.Name}
			if perr := cc.s.calls.answer(me, from, ev.Re, ev.Type, ev.Call); perr != nil {
				from.sendError(ev.Re, perr)
			}
		}
	}
}

// pushIdentityLocalBut queues msg for identity's sessions on this node
// except the one whose session id is skipSid.
func (h *hub) pushIdentityLocalBut(identity string, msg []byte, skipSid string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.sessions[identity] {
		if skipSid == "" || c.ss.sid != skipSid {
			c.enqueue(msg)
			n++
		}
	}
	return n
}

// pushSession queues msg for identity's session sid on this node.
func (h *hub) pushSession(identity, sid string, msg []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.sessions[identity] {
		if c.ss.sid == sid {
			c.enqueue(msg)
			return 1
		}
	}
	return 0
}
