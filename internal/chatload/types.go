package chatload

import (
	"github.com/parleyhq/parley/internal/wire"
	"github.com/parleyhq/parley/signaling/proto"
)

// The protocol's values under the names this package's API uses. They
// are signaling/proto's types (the server's), so the chat client cannot
// drift from the server or from internal/client.
type (
	// Sender names who wrote a message.
	Sender = proto.IdentityView
	// Message is a stored event as pushed (`message`) and as returned by
	// pages and sync.
	Message = proto.MessageView
	// Ack is the body of `chat_ack`.
	Ack = proto.ChatAckBody
	// Conversation describes a conversation from the viewer's side.
	Conversation = proto.ConversationView
	// Joined is the server's answer to join.
	Joined = proto.JoinedBody
	// SyncedConversation is one entry of `chat_synced`.
	SyncedConversation = proto.SyncedConversation
	// Synced is the body of `chat_synced`.
	Synced = proto.ChatSyncedBody
	// Page is the body of `chat_page`.
	Page = proto.ChatPageBody
	// ServerError is an `error` message from the server.
	ServerError = wire.ServerError
	// Call is a request on the wire whose reply has not been read yet.
	Call = wire.Call
)
