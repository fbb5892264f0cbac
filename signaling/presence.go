package signaling

import (
	"sort"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// maxPresenceContacts bounds how many identities one presence change is
// sent to (and how many snapshots a new session receives), so a member of
// many large groups cannot make every status change a broadcast storm.
const maxPresenceContacts = 500

// statusLocked is identity's presence: in_call while any of its sessions
// is in a call room, online while it has any session, else offline.
func (h *hub) statusLocked(identity string) string {
	switch {
	case h.inCall[identity] > 0:
		return proto.PresenceInCall
	case len(h.sessions[identity]) > 0:
		return proto.PresenceOnline
	}
	return proto.PresenceOffline
}

func (h *hub) status(identity string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statusLocked(identity)
}

// contactsLocked are the connected identities that share a direct or
// group conversation with identity. Room conversations are left out on
// purpose: a call room already shows who is there, and a room of
// hundreds would turn every status change into hundreds of messages.
func (h *hub) contactsLocked(identity string) []string {
	seen := map[string]struct{}{}
	for convID := range h.memberOf[identity] {
		e := h.convs[convID]
		if e == nil || e.kind == chat.KindRoom {
			continue
		}
		for id := range e.members {
			if id != identity {
				seen[id] = struct{}{}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	if len(out) > maxPresenceContacts {
		out = out[:maxPresenceContacts]
	}
	return out
}

// announcePresence tells identity's contacts (and its own other sessions,
// so every device agrees) that its status changed. contacts may be given
// when the index no longer has them (the identity just went offline).
func (h *hub) announcePresence(identity, before, after string, contacts []string) {
	if before == after {
		return
	}
	msg := proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: identity, Status: after})
	h.mu.Lock()
	defer h.mu.Unlock()
	if contacts == nil {
		contacts = h.contactsLocked(identity)
	}
	for _, id := range contacts {
		for c := range h.sessions[id] {
			c.enqueue(msg)
		}
	}
	for c := range h.sessions[identity] {
		c.enqueue(msg)
	}
	h.relayPresenceLocked(identity, after, msg)
}

// sendPresenceSnapshot queues the status of every online contact of c's
// identity to c, so a new session starts with the current picture.
func (h *hub) sendPresenceSnapshot(c *chatSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.contactsLocked(c.identity()) {
		c.enqueue(proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: id, Status: h.statusLocked(id)}))
	}
}
