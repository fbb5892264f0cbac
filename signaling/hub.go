package signaling

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/chat"
)

// hub is the index of chat sessions: every connected chatSession per
// identity (several devices and tabs each), and an index of which
// connected identities belong to which conversation, so that a stored
// message is pushed without a database query. The index only holds
// conversations that have at least one connected member, so its size is
// bounded by the connected identities' memberships, not by history.
//
// Lock order: callTable.mu, then hub.mu, then a convEntry's mu; never
// the other way. Only non-blocking enqueues happen under these locks. Chat
// pushes (the hot path) hold only their conversation's lock while they
// queue to its members, so rooms do not contend with each other or with
// joins and leaves.
type hub struct {
	mu       sync.Mutex
	sessions map[string]map[*chatSession]struct{} // by identity
	names    map[string]string                    // display name of connected identities
	inCall   map[string]int                       // identity -> call-room sessions
	convs    map[string]*convEntry                // by conversation id
	memberOf map[string]map[string]struct{}       // identity -> conversation ids
	closed   bool                                 // Run is ending; no more pushes
	// relay carries pushes to other nodes' sessions (hub_relay.go); nil
	// on a single node.
	relay ChatRelay
	// cpres merges presence over the nodes (presence_cluster.go); nil on
	// a single node.
	cpres *clusterPresence
	// sessionGauge counts registered sessions (parley_signaling_sessions).
	sessionGauge prometheus.Gauge
	timers       sync.WaitGroup // push hold timers (push_order.go)
}

type convEntry struct {
	kind    chat.ConversationKind
	members map[string]struct{} // connected identities only; hub.mu

	// mu guards the fields below; it is taken with or without hub.mu.
	mu sync.Mutex
	// conns is every session of every member, rebuilt (never changed in
	// place) under hub.mu whenever members or their sessions change.
	conns []*chatSession
	// dead: the entry left the index (no connected member, or the hub
	// closed); pushes that still hold it send nothing.
	dead bool
	// Push ordering (push_order.go): next is the seq expected next (0:
	// none pushed yet), held the pushes waiting for an earlier seq.
	next  int64
	held  map[int64]heldPush
	flush *time.Timer
}

// refreshLocked rebuilds e.conns from the index; hub.mu is held.
func (h *hub) refreshLocked(e *convEntry) {
	n := 0
	for id := range e.members {
		n += len(h.sessions[id])
	}
	conns := make([]*chatSession, 0, n)
	for id := range e.members {
		for c := range h.sessions[id] {
			conns = append(conns, c)
		}
	}
	e.mu.Lock()
	e.conns = conns
	e.mu.Unlock()
}

// refreshIdentityLocked rebuilds the delivery lists of identity's
// conversations after its sessions changed; hub.mu is held.
func (h *hub) refreshIdentityLocked(identity string) {
	for convID := range h.memberOf[identity] {
		if e := h.convs[convID]; e != nil {
			h.refreshLocked(e)
		}
	}
}

func newHub(sessionGauge prometheus.Gauge) *hub {
	return &hub{
		sessionGauge: sessionGauge,
		sessions:     map[string]map[*chatSession]struct{}{},
		names:        map[string]string{},
		inCall:       map[string]int{},
		convs:        map[string]*convEntry{},
		memberOf:     map[string]map[string]struct{}{},
	}
}

// sessionCount is how many sessions identity has now.
func (h *hub) sessionCount(identity string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions[identity])
}

// register adds c as a session of its identity and returns the
// identity's presence before and after, so the caller can announce a
// change. With limit > 0 it refuses a session beyond limit (ok false).
// first, when set, is queued to c under the same lock, so no push can
// overtake it ("joined" of a messaging session).
func (h *hub) register(c *chatSession, limit int, first []byte) (before, after string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := c.identity()
	before = h.statusLocked(id)
	set := h.sessions[id]
	if limit > 0 && len(set) >= limit {
		return before, before, false
	}
	if first != nil {
		c.enqueue(first)
	}
	if set == nil {
		set = map[*chatSession]struct{}{}
		h.sessions[id] = set
		h.watch(topicIdentity(id), true)
	}
	set[c] = struct{}{}
	h.sessionGauge.Inc()
	h.names[id] = c.displayName()
	if c.inCall() {
		h.inCall[id]++
	}
	h.refreshIdentityLocked(id)
	return before, h.statusLocked(id), true
}

// unregister removes c. When it was the identity's last session, the
// identity leaves the conversation index. It returns the presence before
// and after, and the contacts computed before the index shrank (so an
// "offline" still reaches them); in cluster mode also the identity's
// direct and group conversations, for the same reason (presence_cluster.go).
func (h *hub) unregister(c *chatSession) (before, after string, contacts, convs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := c.identity()
	set := h.sessions[id]
	if _, ok := set[c]; !ok {
		return "", "", nil, nil
	}
	before = h.statusLocked(id)
	contacts = h.contactsLocked(id)
	if h.cpres != nil && len(set) == 1 {
		convs = h.contactConvsLocked(id)
	}
	delete(set, c)
	h.sessionGauge.Dec()
	if c.inCall() {
		if h.inCall[id]--; h.inCall[id] <= 0 {
			delete(h.inCall, id)
		}
	}
	if len(set) == 0 {
		h.relayOfflineLocked(id)
		h.watch(topicIdentity(id), false)
		delete(h.sessions, id)
		delete(h.names, id)
		for convID := range h.memberOf[id] {
			if e := h.convs[convID]; e != nil {
				delete(e.members, id)
				if len(e.members) == 0 {
					e.mu.Lock()
					e.dead, e.conns = true, nil
					h.disarmFlushLocked(e)
					e.mu.Unlock()
					delete(h.convs, convID)
					h.watch(topicConv(convID), false)
				} else {
					h.refreshLocked(e)
				}
			}
		}
		delete(h.memberOf, id)
	} else {
		h.refreshIdentityLocked(id)
	}
	return before, h.statusLocked(id), contacts, convs
}

// addMembers records that the given identities belong to conv, for those
// of them that are connected. It returns the identities that were not
// known as members before (they learn of the conversation by a push).
func (h *hub) addMembers(convID string, kind chat.ConversationKind, identities ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var added []string
	for _, id := range identities {
		if len(h.sessions[id]) == 0 {
			continue
		}
		e := h.convs[convID]
		if e == nil {
			e = &convEntry{kind: kind, members: map[string]struct{}{}}
			h.convs[convID] = e
			h.watch(topicConv(convID), true)
		}
		if _, ok := e.members[id]; ok {
			continue
		}
		e.members[id] = struct{}{}
		m := h.memberOf[id]
		if m == nil {
			m = map[string]struct{}{}
			h.memberOf[id] = m
		}
		m[convID] = struct{}{}
		added = append(added, id)
	}
	if len(added) > 0 {
		h.refreshLocked(h.convs[convID])
	}
	return added
}

// isMember reports whether connected identity is a known member of conv.
func (h *hub) isMember(identity, convID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.memberOf[identity][convID]
	return ok
}

// convKind returns the kind of an indexed conversation ("" if unknown).
func (h *hub) convKind(convID string) chat.ConversationKind {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.convs[convID]; e != nil {
		return e.kind
	}
	return ""
}

// members returns the connected members of conv.
func (h *hub) members(convID string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.convs[convID]
	if e == nil {
		return nil
	}
	out := make([]string, 0, len(e.members))
	for id := range e.members {
		out = append(out, id)
	}
	return out
}

// displayName returns a connected identity's display name, or the
// identity itself when it is offline (or chose none).
func (h *hub) displayName(identity string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.names[identity]; n != "" {
		return n
	}
	return identity
}

// pushConvLocal queues msg for every session on this node of every
// connected member of conv except skip (the session that caused it,
// which gets its own reply) and, when skipIdentity is set, except all of
// that identity's sessions. pushConv (hub_relay.go) also relays it.
func (h *hub) pushConvLocal(convID string, msg []byte, skip *chatSession, skipIdentity string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.convs[convID]
	if e == nil {
		return 0
	}
	n := 0
	for id := range e.members {
		if id == skipIdentity {
			continue
		}
		for c := range h.sessions[id] {
			if c != skip {
				c.enqueue(msg)
				n++
			}
		}
	}
	return n
}

// pushIdentityLocal queues msg for every session of identity on this
// node except skip. pushIdentity (hub_relay.go) also relays it.
func (h *hub) pushIdentityLocal(identity string, msg []byte, skip outbound) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.sessions[identity] {
		if c != skip {
			c.enqueue(msg)
			n++
		}
	}
	return n
}
