package proto

import (
	"strings"
	"time"

	"github.com/parleyhq/parley/chat"
)

// Bodies of the server's chat messages, and how the chat domain's values
// are shown to a client.

// IdentityView is a user as other users see them.
type IdentityView struct {
	Identity string `json:"identity"`
	Name     string `json:"name,omitempty"`
}

// MessageView is one stored chat event ("message", pages, sync).
type MessageView struct {
	ConversationID string       `json:"conversationId"`
	Seq            int64        `json:"seq"`
	ServerID       string       `json:"serverId"`
	ClientMsgID    string       `json:"clientMsgId"`
	Sender         IdentityView `json:"sender"`
	Kind           string       `json:"kind"`
	Text           string       `json:"text,omitempty"`
	TargetSeq      int64        `json:"targetSeq,omitempty"`
	CreatedAt      int64        `json:"createdAt"` // Unix milliseconds
}

// ChatAckBody is the body of "chat_ack".
type ChatAckBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	Seq            int64  `json:"seq"`
	ServerID       string `json:"serverId"`
	CreatedAt      int64  `json:"createdAt"`
	Duplicate      bool   `json:"duplicate,omitempty"`
}

// ConversationView is one conversation with the viewer's position in it.
type ConversationView struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Title        string `json:"title,omitempty"`
	Room         string `json:"room,omitempty"`
	Peer         string `json:"peer,omitempty"` // direct: the other identity
	LastSeq      int64  `json:"lastSeq"`
	Delivered    int64  `json:"delivered"`
	Read         int64  `json:"read"`
	Unread       int64  `json:"unread"`
	LastActivity int64  `json:"lastActivity"`
}

// SyncedConversation is one entry of "chat_synced".
type SyncedConversation struct {
	Conversation ConversationView `json:"conversation"`
	Messages     []MessageView    `json:"messages"`
	More         bool             `json:"more"`
}

// ChatSyncedBody is the body of "chat_synced".
type ChatSyncedBody struct {
	Conversations []SyncedConversation `json:"conversations"`
	Gone          []string             `json:"gone"`
}

// ChatPageBody is the body of "chat_page".
type ChatPageBody struct {
	ConversationID string        `json:"conversationId"`
	Messages       []MessageView `json:"messages"`
	More           bool          `json:"more"`
}

// WatermarksBody is "chat_watermarks" (reply) and "chat_receipt" (push).
type WatermarksBody struct {
	ConversationID string `json:"conversationId"`
	Identity       string `json:"identity,omitempty"`
	Delivered      int64  `json:"delivered"`
	Read           int64  `json:"read"`
}

// TypingEventBody is the server's "typing".
type TypingEventBody struct {
	ConversationID string `json:"conversationId"`
	Identity       string `json:"identity"`
	Name           string `json:"name,omitempty"`
}

// PresenceBody is the body of "presence".
type PresenceBody struct {
	Identity string `json:"identity"`
	Status   string `json:"status"` // online, in_call or offline
}

// ConversationBody is the body of "conversation".
type ConversationBody struct {
	Conversation ConversationView `json:"conversation"`
}

// NewMessageView shows one stored chat event.
func NewMessageView(m chat.Message) MessageView {
	return MessageView{
		ConversationID: m.ConversationID,
		Seq:            m.Seq,
		ServerID:       m.ServerID,
		ClientMsgID:    m.ClientMsgID,
		Sender:         IdentityView{Identity: m.Sender.ID, Name: m.Sender.Name},
		Kind:           string(m.Kind),
		Text:           m.Text,
		TargetSeq:      m.TargetSeq,
		CreatedAt:      Millis(m.CreatedAt),
	}
}

// NewMessageViews shows a page of events.
func NewMessageViews(ms []chat.Message) []MessageView {
	out := make([]MessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, NewMessageView(m))
	}
	return out
}

// Millis is t in Unix milliseconds, 0 for the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// NewConversationView describes a conversation to viewer; direct
// conversations name the other identity so the client can title them.
func NewConversationView(s chat.ConversationSummary, viewer string) ConversationView {
	c := s.Conversation
	v := ConversationView{
		ID: c.ID, Kind: string(c.Kind), Title: c.Title, LastSeq: c.LastSeq,
		Delivered: s.Watermarks.Delivered, Read: s.Watermarks.Read, Unread: s.Unread,
		LastActivity: Millis(s.LastActivity),
	}
	switch c.Kind {
	case chat.KindRoom:
		v.Room = c.Key
	case chat.KindDirect:
		v.Peer = DirectPeer(c.Key, viewer)
	}
	return v
}

// DirectPeer returns the identity of a direct conversation's key that is
// not viewer.
func DirectPeer(key, viewer string) string {
	a, b, _ := strings.Cut(key, "\x00")
	if a == viewer {
		return b
	}
	return a
}
