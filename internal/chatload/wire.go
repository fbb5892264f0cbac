// Package chatload is a Go client of Parley's chat protocol
// (docs/protocol.md, "Chat, presence and calls") and the pieces built on
// it: a reconnecting session that keeps an outbox of unacknowledged
// messages and a gap-free copy of each conversation, and a load runner
// that measures persisted messages, deliveries and latency with many
// connections. It is written from the protocol document, not from the
// server's Go types, so a drift between the two shows up here.
package chatload

import "encoding/json"

// Envelope is one WebSocket frame in either direction.
type Envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Re   string          `json:"re,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// ServerError is an `error` message from the server.
type ServerError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *ServerError) Error() string { return e.Code + ": " + e.Message }

// Sender names who wrote a message.
type Sender struct {
	Identity string `json:"identity"`
	Name     string `json:"name,omitempty"`
}

// Message is a stored event as pushed (`message`) and as returned by
// pages and sync.
type Message struct {
	ConversationID string `json:"conversationId"`
	Seq            int64  `json:"seq"`
	ServerID       string `json:"serverId"`
	ClientMsgID    string `json:"clientMsgId"`
	Sender         Sender `json:"sender"`
	Kind           string `json:"kind"`
	Text           string `json:"text,omitempty"`
	TargetSeq      int64  `json:"targetSeq,omitempty"`
	CreatedAt      int64  `json:"createdAt"`
}

// Ack is the body of `chat_ack`.
type Ack struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	Seq            int64  `json:"seq"`
	ServerID       string `json:"serverId"`
	CreatedAt      int64  `json:"createdAt"`
	Duplicate      bool   `json:"duplicate,omitempty"`
}

// Conversation describes a conversation from the viewer's side.
type Conversation struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Title        string `json:"title,omitempty"`
	Room         string `json:"room,omitempty"`
	Peer         string `json:"peer,omitempty"`
	LastSeq      int64  `json:"lastSeq"`
	Delivered    int64  `json:"delivered"`
	Read         int64  `json:"read"`
	Unread       int64  `json:"unread"`
	LastActivity int64  `json:"lastActivity"`
}

// Joined is the part of `joined` a chat client uses.
type Joined struct {
	Protocol       int    `json:"protocol"`
	Room           string `json:"room"`
	ConversationID string `json:"conversationId,omitempty"`
	Participant    struct {
		SID      string `json:"sid"`
		Identity string `json:"identity"`
		Name     string `json:"name"`
	} `json:"participant"`
	PingIntervalMs int64 `json:"pingIntervalMs"`
	PingTimeoutMs  int64 `json:"pingTimeoutMs"`
}

// SyncedConversation is one entry of `chat_synced`.
type SyncedConversation struct {
	Conversation Conversation `json:"conversation"`
	Messages     []Message    `json:"messages"`
	More         bool         `json:"more"`
}

// Synced is the body of `chat_synced`.
type Synced struct {
	Conversations []SyncedConversation `json:"conversations"`
	Gone          []string             `json:"gone"`
}

// Page is the body of `chat_page`.
type Page struct {
	ConversationID string    `json:"conversationId"`
	Messages       []Message `json:"messages"`
	More           bool      `json:"more"`
}

type joinBody struct {
	Token    string `json:"token"`
	Protocol int    `json:"protocol"`
	Name     string `json:"name,omitempty"`
}

type sendBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	Text           string `json:"text"`
}

type syncBody struct {
	LastSeqs map[string]int64 `json:"lastSeqs"`
	Limit    int              `json:"limit,omitempty"`
}

type rangeBody struct {
	ConversationID string `json:"conversationId"`
	AfterSeq       int64  `json:"afterSeq"`
	Limit          int    `json:"limit,omitempty"`
}

type groupBody struct {
	Title   string   `json:"title,omitempty"`
	Members []string `json:"members"`
}

type conversationBody struct {
	Conversation Conversation `json:"conversation"`
}

type pingBody struct {
	TS int64 `json:"ts"`
}

// Protocol message types this package speaks.
const (
	TypeJoin         = "join"
	TypeJoined       = "joined"
	TypeError        = "error"
	TypePing         = "ping"
	TypePong         = "pong"
	TypeBye          = "bye"
	TypeChatSend     = "chat_send"
	TypeChatAck      = "chat_ack"
	TypeMessage      = "message"
	TypeChatSync     = "chat_sync"
	TypeChatSynced   = "chat_synced"
	TypeChatRange    = "chat_range"
	TypeChatPage     = "chat_page"
	TypeChatGroup    = "chat_group"
	TypeConversation = "conversation"
)

// ProtocolVersion is the signaling protocol this client speaks.
const ProtocolVersion = 1
