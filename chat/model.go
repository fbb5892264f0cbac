package chat

import (
	"fmt"
	"time"
)

// ConversationKind says how a conversation came to be and who may join it.
type ConversationKind string

const (
	// KindRoom is the chat of one call room, keyed by the room name; people
	// become members when they join the room.
	KindRoom ConversationKind = "room"
	// KindDirect is the one conversation between an unordered pair of
	// identities: (a, b) and (b, a) name the same conversation.
	KindDirect ConversationKind = "direct"
	// KindGroup has an explicit member list chosen by its creator.
	KindGroup ConversationKind = "group"
)

// Valid reports whether k is one of the known kinds.
func (k ConversationKind) Valid() bool {
	return k == KindRoom || k == KindDirect || k == KindGroup
}

// Role is a member's power in a conversation.
type Role string

const (
	RoleMember Role = "member"
	// RoleAdmin may also delete other members' messages.
	RoleAdmin Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleMember || r == RoleAdmin }

// EventKind is the type of one event in a conversation's log.
type EventKind string

const (
	EventText EventKind = "text"
	// EventEdit replaces the text of the event at TargetSeq.
	EventEdit EventKind = "edit"
	// EventDelete turns the event at TargetSeq into a tombstone.
	EventDelete EventKind = "delete"
	// EventCallMissed and EventCallDeclined record an IM-style call
	// invitation that nobody answered or that the callee declined; Sender
	// is the caller.
	EventCallMissed   EventKind = "call_missed"
	EventCallDeclined EventKind = "call_declined"
	// EventSystem is a server notice (joined, left, renamed...).
	EventSystem EventKind = "system"
	// EventReact and EventUnreact add and take back the sender's emoji
	// reaction (Text, one of Reactions) to the text message at TargetSeq.
	EventReact   EventKind = "react"
	EventUnreact EventKind = "unreact"
)

// Valid reports whether k is one of the known event kinds.
func (k EventKind) Valid() bool {
	switch k {
	case EventText, EventEdit, EventDelete, EventCallMissed, EventCallDeclined, EventSystem, EventReact, EventUnreact:
		return true
	}
	return false
}

// Targets reports whether events of kind k refer to an earlier seq.
func (k EventKind) Targets() bool {
	return k == EventEdit || k == EventDelete || k == EventReact || k == EventUnreact
}

// Visible reports whether events of kind k appear as their own entry in the
// message list (and so count as unread).
func (k EventKind) Visible() bool { return k.Valid() && !k.Targets() }

// Identity is a user as the transport authenticated them: a stable id and
// the display name they had at the time.
type Identity struct {
	ID   string
	Name string
}

// Conversation is one chat thread.
type Conversation struct {
	ID   string
	Kind ConversationKind
	// Key is the room name for rooms and the sorted pair "a\x00b" for
	// direct conversations; empty for groups.
	Key   string
	Title string
	// LastSeq is the seq of the newest event (0 when empty).
	LastSeq   int64
	CreatedAt time.Time
}

// Member is one identity's membership in a conversation, with its
// watermarks: Delivered is the highest seq the member's client confirmed
// receiving, Read the highest it showed to the user. Both only grow, and
// Read never exceeds Delivered because reading implies delivery.
type Member struct {
	ConversationID string
	Identity       Identity
	Role           Role
	Delivered      int64
	Read           int64
	JoinedAt       time.Time
}

// Message is one stored event. The store fills ServerID, Seq and CreatedAt;
// the rest comes from the sender.
type Message struct {
	ServerID       string
	ConversationID string
	Seq            int64
	ClientMsgID    string
	Sender         Identity
	Kind           EventKind
	Text           string
	// TargetSeq is the edited or deleted seq for edit and delete events, 0
	// otherwise.
	TargetSeq int64
	CreatedAt time.Time
}

// Ack is what the sender learns once its event is durably stored.
type Ack struct {
	ServerID    string
	Seq         int64
	ClientMsgID string
	CreatedAt   time.Time
	// Duplicate is true when this client message id was already stored and
	// the Ack describes that original event: nothing new was written.
	Duplicate bool
}

// Watermarks is a member's delivery and read position.
type Watermarks struct {
	Delivered int64
	Read      int64
}

// ConversationSummary is one row of an identity's conversation list.
type ConversationSummary struct {
	Conversation Conversation
	Role         Role
	Watermarks   Watermarks
	// Unread counts visible events (not edits or deletes) after the read
	// watermark that other members sent.
	Unread int64
	// LastActivity is when the newest event was stored, or CreatedAt.
	LastActivity time.Time
}

// DirectKey is the storage key of the direct conversation between a and b,
// the same for both orders.
func DirectKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "\x00" + b
}

func (m Message) String() string {
	return fmt.Sprintf("%s#%d(%s by %s)", m.ConversationID, m.Seq, m.Kind, m.Sender.ID)
}
