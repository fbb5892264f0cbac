package signaling

import (
	"encoding/json"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// Cross-node fan-out (cluster mode, docs/cluster.md). Every push the hub
// makes to this node's sessions is also handed to the ChatRelay, which
// publishes it on a topic: the conversation's ("c:<id>") for what goes to
// a conversation's members, the identity's ("u:<identity>") for what goes
// to one identity's devices. Each node watches the topics of the
// conversations in its index and of the identities connected to it, and
// applies what arrives with the *Local pushes (DeliverRemote), which do
// not relay again. On a single node relay is nil and only the local push
// happens.
//
// The relay is best effort, like a push to a slow socket: every chat
// event is stored first, and clients fill a gap in seq from the store.

// relayEvent is one event as it travels between nodes.
type relayEvent struct {
	// Kind is one of the relay* constants.
	Kind string `json:"k"`
	// Conv is the conversation the event belongs to.
	Conv string `json:"c,omitempty"`
	// Seq is a stored message's seq (relayMessage), for push ordering.
	Seq int64 `json:"s,omitempty"`
	// Identity is the addressed identity (relayIdentity, relayNewConv),
	// the identity left out (relayConv) or the one whose presence changed
	// (relayPresence).
	Identity string `json:"i,omitempty"`
	// Conversation is the new conversation (relayNewConv).
	Conversation *chat.Conversation `json:"n,omitempty"`
	// Msg is the encoded message for the sessions.
	Msg json.RawMessage `json:"m,omitempty"`
	// Since is when the events a refill hint is about began to be lost
	// (relayRefill; Unix milliseconds).
	Since int64 `json:"t,omitempty"`
	// Convs are the conversations whose members a presence change goes
	// to (relayPresenceChange).
	Convs []string `json:"cs,omitempty"`
	// Call, Node, Sid, Skip, Type, Name and Re route calls between nodes
	// (call_cluster.go): the call, the node that sent the event, a
	// session (the one addressed, or the one an identity push leaves
	// out), the answer's request type, the answering identity's name and
	// its request id.
	Call string `json:"call,omitempty"`
	Node string `json:"node,omitempty"`
	Sid  string `json:"sid,omitempty"`
	Skip string `json:"skip,omitempty"`
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
	Re   string `json:"re,omitempty"`
}

const (
	relayMessage  = "msg"      // a stored event, pushed in seq order
	relayConv     = "conv"     // receipts, typing: every member but Identity
	relayIdentity = "id"       // every session of Identity
	relayNewConv  = "new"      // Identity is a member of a new conversation
	relayPresence = "presence" // Identity's presence, to its contacts in Conv
	relayRefill   = "refill"   // the sender lost publications on Conv's or Identity's topic (cluster_refill.go)
)

func topicConv(convID string) string       { return "c:" + convID }
func topicIdentity(identity string) string { return "u:" + identity }

// watch asks the relay for topic's events (or stops); it never blocks,
// so it may run under hub.mu.
func (h *hub) watch(topic string, on bool) {
	if h.relay != nil {
		h.relay.Watch(topic, on)
	}
}

func (h *hub) publish(topic string, ev relayEvent) {
	if h.relay == nil {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return // the fields are strings, numbers and raw JSON: cannot fail
	}
	h.relay.Publish(topic, b)
}

// pushOrdered is pushOrderedLocal plus the other nodes.
func (h *hub) pushOrdered(convID string, seq int64, msg []byte, skip *chatSession) int {
	h.publish(topicConv(convID), relayEvent{Kind: relayMessage, Conv: convID, Seq: seq, Msg: msg})
	return h.pushOrderedLocal(convID, seq, msg, skip)
}

// pushConv is pushConvLocal plus the other nodes (where skip, a session
// of this node, is not; skipIdentity is left out everywhere).
func (h *hub) pushConv(convID string, msg []byte, skip *chatSession, skipIdentity string) int {
	h.publish(topicConv(convID), relayEvent{Kind: relayConv, Conv: convID, Identity: skipIdentity, Msg: msg})
	return h.pushConvLocal(convID, msg, skip, skipIdentity)
}

// pushIdentity is pushIdentityLocal plus the identity's sessions on the
// other nodes.
func (h *hub) pushIdentity(identity string, msg []byte, skip outbound) int {
	h.publish(topicIdentity(identity), relayEvent{Kind: relayIdentity, Identity: identity, Msg: msg})
	return h.pushIdentityLocal(identity, msg, skip)
}

// relayConversation tells the other nodes that members belong to a new
// (or newly opened) conversation, so they index it for the members
// connected to them and tell those members' sessions.
func (h *hub) relayConversation(conv chat.Conversation, members []string) {
	if h.relay == nil {
		return
	}
	for _, id := range members {
		h.publish(topicIdentity(id), relayEvent{Kind: relayNewConv, Identity: id, Conversation: &conv})
	}
}

// relayPresenceLocked sends identity's new status to its contacts on
// other nodes: on the topics of its direct and group conversations (rooms
// are left out, as locally: contactsLocked). hub.mu is held.
func (h *hub) relayPresenceLocked(identity, status string, msg []byte) {
	if h.relay == nil || h.cpres != nil || status == proto.PresenceOffline {
		return // offline is relayed by unregister, while the index still has the conversations
	}
	h.relayContactsLocked(identity, msg)
}

// relayOfflineLocked announces identity offline to its contacts on other
// nodes; unregister calls it before the identity leaves the index.
func (h *hub) relayOfflineLocked(identity string) {
	if h.relay == nil || h.cpres != nil { // cluster presence announces merged changes instead
		return
	}
	msg := proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: identity, Status: proto.PresenceOffline})
	h.relayContactsLocked(identity, msg)
}

func (h *hub) relayContactsLocked(identity string, msg []byte) {
	n := 0
	for convID := range h.memberOf[identity] {
		if e := h.convs[convID]; e == nil || e.kind == chat.KindRoom {
			continue
		}
		if n++; n > maxPresenceContacts {
			return
		}
		h.publish(topicConv(convID), relayEvent{Kind: relayPresence, Conv: convID, Identity: identity, Msg: msg})
	}
}

// DeliverRemote applies an event another node relayed (the cluster bus
// calls it for the topics this node watches). Malformed events are
// dropped: they come from Parley nodes of possibly another version.
func (s *Server) DeliverRemote(topic string, payload []byte) {
	var ev relayEvent
	if json.Unmarshal(payload, &ev) != nil {
		return
	}
	h := s.hub
	n := 0
	switch ev.Kind {
	case relayMessage:
		n = h.pushOrderedLocal(ev.Conv, ev.Seq, ev.Msg, nil)
	case relayConv:
		n = h.pushConvLocal(ev.Conv, ev.Msg, nil, ev.Identity)
	case relayIdentity:
		n = h.pushIdentityLocal(ev.Identity, ev.Msg, nil)
	case relayNewConv:
		if ev.Conversation == nil || ev.Conversation.ID == "" {
			return
		}
		conv := *ev.Conversation
		if len(h.addMembers(conv.ID, conv.Kind, ev.Identity)) == 0 {
			return // not connected here, or already knew it
		}
		view := proto.NewConversationView(chat.ConversationSummary{Conversation: conv, LastActivity: conv.CreatedAt}, ev.Identity)
		n = h.pushIdentityLocal(ev.Identity, proto.Encode(proto.TypeConversation, "", proto.ConversationBody{Conversation: view}), nil)
		if s.cpres != nil {
			s.cpres.joined(ev.Identity, conv) // presence_cluster.go
		}
	case relayPresence:
		if h.status(ev.Identity) != proto.PresenceOffline {
			return // also connected here: this node's own view stands
		}
		n = h.pushConvLocal(ev.Conv, ev.Msg, nil, ev.Identity)
	case relayPresenceChange:
		if s.cpres != nil {
			n = s.cpres.deliverRemote(ev)
		}
	case relayCall, relaySession, relayCallAnswer:
		if s.ccalls != nil {
			n = s.ccalls.deliverRemote(ev)
		}
	case relayRefill:
		if ev.Since > 0 {
			s.refill.hint(ev.Conv, ev.Identity, time.UnixMilli(ev.Since))
		}
	}
	s.metrics.chatPushes.Add(float64(n))
}

// localPushes is the hub as the call table sees it on a single node:
// ringing and call state reach this node's sessions. In cluster mode
// clusterCalls (call_cluster.go) takes its place.
type localPushes struct{ *hub }

func (l localPushes) pushCall(_, identity string, msg []byte, skip outbound) int {
	return l.pushIdentityLocal(identity, msg, skip)
}
