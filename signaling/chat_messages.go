package signaling

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/chat"
)

// Client message types for chat, presence and call invitations
// (docs/protocol.md, Chat and Calls).
const (
	TypeChatSend    = "chat_send"
	TypeChatEdit    = "chat_edit"
	TypeChatDelete  = "chat_delete"
	TypeChatSync    = "chat_sync"
	TypeChatHistory = "chat_history"
	TypeChatRange   = "chat_range"
	TypeChatReceipt = "chat_receipt"
	TypeChatDirect  = "chat_direct"
	TypeChatGroup   = "chat_group"
	TypeTyping      = "typing"
	TypeCall        = "call"
	TypeCallAccept  = "call_accept"
	TypeCallDecline = "call_decline"
	TypeCallCancel  = "call_cancel"
)

// Server message types for chat, presence and calls. chat_receipt and
// typing are also server pushes.
const (
	TypeChatAck        = "chat_ack"
	TypeMessage        = "message"
	TypeChatSynced     = "chat_synced"
	TypeChatPage       = "chat_page"
	TypeChatWatermarks = "chat_watermarks"
	TypeConversation   = "conversation"
	TypePresence       = "presence"
	TypeCallRinging    = "call_ringing"
	TypeRing           = "ring"
	TypeCallAccepted   = "call_accepted"
	TypeCallEnded      = "call_ended"
)

// Error codes added by chat and calls.
const (
	// CodeUnavailable: chat is not enabled on this server.
	CodeUnavailable = "unavailable"
	// CodeConflict: a client message id was reused for different content.
	CodeConflict = "conflict"
	// CodeNotInCall: a media message on a messaging-only session.
	CodeNotInCall = "not_in_call"
	// CodeCallLimit: too many call invitations ringing at once.
	CodeCallLimit = "call_limit"
	// CodeTooManySessions: the identity has max_sessions_per_identity
	// connections already.
	CodeTooManySessions = "too_many_sessions"
)

// Decoder bounds for chat bodies; the chat service enforces the
// configurable ones (text size, group size, page caps) on top.
const (
	maxSyncConversations = 1000
	maxGroupMemberList   = 1024
	maxChatIDBytes       = chat.MaxIDBytes
	maxChatTextBytes     = 1 << 20 // the frame limit is lower; this only guards the decoder
)

// ChatSendBody is the body of "chat_send".
type ChatSendBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	Text           string `json:"text"`
}

// ChatEditBody is the body of "chat_edit".
type ChatEditBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	TargetSeq      int64  `json:"targetSeq"`
	Text           string `json:"text"`
}

// ChatDeleteBody is the body of "chat_delete".
type ChatDeleteBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	TargetSeq      int64  `json:"targetSeq"`
}

// ChatSyncBody is the body of "chat_sync": the newest seq the client holds
// per conversation, and the most missed events it wants per conversation.
type ChatSyncBody struct {
	LastSeqs map[string]int64 `json:"lastSeqs"`
	Limit    int              `json:"limit,omitempty"`
}

// ChatHistoryBody is the body of "chat_history" (scroll-back).
type ChatHistoryBody struct {
	ConversationID string `json:"conversationId"`
	BeforeSeq      int64  `json:"beforeSeq,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

// ChatRangeBody is the body of "chat_range" (gap refill).
type ChatRangeBody struct {
	ConversationID string `json:"conversationId"`
	AfterSeq       int64  `json:"afterSeq"`
	Limit          int    `json:"limit,omitempty"`
}

// ChatReceiptBody is the body of "chat_receipt": delivered and/or read up
// to a seq (0 leaves a watermark as is).
type ChatReceiptBody struct {
	ConversationID string `json:"conversationId"`
	Delivered      int64  `json:"delivered,omitempty"`
	Read           int64  `json:"read,omitempty"`
}

// ChatDirectBody is the body of "chat_direct".
type ChatDirectBody struct {
	Identity string `json:"identity"`
}

// ChatGroupBody is the body of "chat_group".
type ChatGroupBody struct {
	Title   string   `json:"title,omitempty"`
	Members []string `json:"members"`
}

// TypingBody is the body of the client's "typing".
type TypingBody struct {
	ConversationID string `json:"conversationId"`
}

// CallBody is the body of "call": exactly one of To (an identity, a
// direct call) and ConversationID (a group or direct conversation).
type CallBody struct {
	To             string `json:"to,omitempty"`
	ConversationID string `json:"conversationId,omitempty"`
}

// CallRefBody is the body of "call_accept", "call_decline", "call_cancel".
type CallRefBody struct {
	CallID string `json:"callId"`
}

// newChatBody returns the body struct for a chat, presence or call type,
// or nil if typ is not one of them.
func newChatBody(typ string) any {
	switch typ {
	case TypeChatSend:
		return &ChatSendBody{}
	case TypeChatEdit:
		return &ChatEditBody{}
	case TypeChatDelete:
		return &ChatDeleteBody{}
	case TypeChatSync:
		return &ChatSyncBody{}
	case TypeChatHistory:
		return &ChatHistoryBody{}
	case TypeChatRange:
		return &ChatRangeBody{}
	case TypeChatReceipt:
		return &ChatReceiptBody{}
	case TypeChatDirect:
		return &ChatDirectBody{}
	case TypeChatGroup:
		return &ChatGroupBody{}
	case TypeTyping:
		return &TypingBody{}
	case TypeCall:
		return &CallBody{}
	case TypeCallAccept, TypeCallDecline, TypeCallCancel:
		return &CallRefBody{}
	}
	return nil
}

// validateChatBody checks the shape of a chat body. Client message ids are
// normalised to the lower-case form the chat store de-duplicates on.
func validateChatBody(typ string, body any) *ProtoError {
	switch b := body.(type) {
	case *ChatSendBody:
		if perr := checkConvID(typ, b.ConversationID); perr != nil {
			return perr
		}
		if perr := normClientMsgID(typ, &b.ClientMsgID); perr != nil {
			return perr
		}
		return checkText(typ, b.Text)
	case *ChatEditBody:
		if perr := checkConvID(typ, b.ConversationID); perr != nil {
			return perr
		}
		if perr := normClientMsgID(typ, &b.ClientMsgID); perr != nil {
			return perr
		}
		if b.TargetSeq <= 0 {
			return badRequest("%s: targetSeq must be positive", typ)
		}
		return checkText(typ, b.Text)
	case *ChatDeleteBody:
		if perr := checkConvID(typ, b.ConversationID); perr != nil {
			return perr
		}
		if perr := normClientMsgID(typ, &b.ClientMsgID); perr != nil {
			return perr
		}
		if b.TargetSeq <= 0 {
			return badRequest("%s: targetSeq must be positive", typ)
		}
	case *ChatSyncBody:
		if len(b.LastSeqs) > maxSyncConversations {
			return badRequest("%s: lastSeqs names more than %d conversations", typ, maxSyncConversations)
		}
		for id, seq := range b.LastSeqs {
			if perr := checkConvID(typ, id); perr != nil {
				return perr
			}
			if seq < 0 {
				return badRequest("%s: lastSeqs values must not be negative", typ)
			}
		}
		return checkLimit(typ, b.Limit)
	case *ChatHistoryBody:
		if perr := checkConvID(typ, b.ConversationID); perr != nil {
			return perr
		}
		if b.BeforeSeq < 0 {
			return badRequest("%s: beforeSeq must not be negative", typ)
		}
		return checkLimit(typ, b.Limit)
	case *ChatRangeBody:
		if perr := checkConvID(typ, b.ConversationID); perr != nil {
			return perr
		}
		if b.AfterSeq < 0 {
			return badRequest("%s: afterSeq must not be negative", typ)
		}
		return checkLimit(typ, b.Limit)
	case *ChatReceiptBody:
		if perr := checkConvID(typ, b.ConversationID); perr != nil {
			return perr
		}
		if b.Delivered < 0 || b.Read < 0 || b.Delivered == 0 && b.Read == 0 {
			return badRequest("%s: give a positive delivered and/or read seq", typ)
		}
	case *ChatDirectBody:
		return checkIdentity(typ, "identity", b.Identity)
	case *ChatGroupBody:
		if b.Title != "" {
			if err := chat.ValidateTitle(b.Title); err != nil {
				return badRequest("%s: title: %s", typ, trimChatErr(err))
			}
		}
		if len(b.Members) == 0 || len(b.Members) > maxGroupMemberList {
			return badRequest("%s: members must list 1 to %d identities", typ, maxGroupMemberList)
		}
		for _, m := range b.Members {
			if perr := checkIdentity(typ, "members", m); perr != nil {
				return perr
			}
		}
	case *TypingBody:
		return checkConvID(typ, b.ConversationID)
	case *CallBody:
		if (b.To == "") == (b.ConversationID == "") {
			return badRequest("%s: give exactly one of to and conversationId", typ)
		}
		if b.To != "" {
			return checkIdentity(typ, "to", b.To)
		}
		return checkConvID(typ, b.ConversationID)
	case *CallRefBody:
		id, err := chat.ParseClientMsgID(b.CallID)
		if err != nil {
			return badRequest("%s: callId must be a UUID", typ)
		}
		b.CallID = id
	}
	return nil
}

func checkConvID(typ, id string) *ProtoError {
	if id == "" {
		return badRequest("%s: conversationId is required", typ)
	}
	if len(id) > maxChatIDBytes || !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return badRequest("%s: conversationId is malformed", typ)
	}
	return nil
}

func checkIdentity(typ, field, id string) *ProtoError {
	if err := chat.ValidateIdentity(chat.Identity{ID: id}); err != nil {
		return badRequest("%s: %s: %s", typ, field, trimChatErr(err))
	}
	return nil
}

func normClientMsgID(typ string, id *string) *ProtoError {
	n, err := chat.ParseClientMsgID(*id)
	if err != nil {
		return badRequest("%s: clientMsgId must be a UUID (36 characters)", typ)
	}
	*id = n
	return nil
}

// checkText only rejects what cannot be a message at all; the size limit
// is the chat service's (answered with too_large, connection kept).
func checkText(typ, text string) *ProtoError {
	if text == "" {
		return badRequest("%s: text is required", typ)
	}
	if len(text) > maxChatTextBytes {
		return &ProtoError{Code: CodeTooLarge, Message: typ + ": text too large"}
	}
	return nil
}

func checkLimit(typ string, limit int) *ProtoError {
	if limit < 0 {
		return badRequest("%s: limit must not be negative", typ)
	}
	return nil
}

// trimChatErr drops the "chat: invalid input: " prefix of chat errors so
// the client sees only the useful part.
func trimChatErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "chat: ") {
		return msg[i+2:]
	}
	return msg
}

// Views sent to clients.

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

func messageView(m chat.Message) MessageView {
	return MessageView{
		ConversationID: m.ConversationID,
		Seq:            m.Seq,
		ServerID:       m.ServerID,
		ClientMsgID:    m.ClientMsgID,
		Sender:         IdentityView{Identity: m.Sender.ID, Name: m.Sender.Name},
		Kind:           string(m.Kind),
		Text:           m.Text,
		TargetSeq:      m.TargetSeq,
		CreatedAt:      millis(m.CreatedAt),
	}
}

func messageViews(ms []chat.Message) []MessageView {
	out := make([]MessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, messageView(m))
	}
	return out
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// conversationView describes c to viewer; direct conversations name the
// other identity so the client can title them.
func conversationView(s chat.ConversationSummary, viewer string) ConversationView {
	c := s.Conversation
	v := ConversationView{
		ID: c.ID, Kind: string(c.Kind), Title: c.Title, LastSeq: c.LastSeq,
		Delivered: s.Watermarks.Delivered, Read: s.Watermarks.Read, Unread: s.Unread,
		LastActivity: millis(s.LastActivity),
	}
	switch c.Kind {
	case chat.KindRoom:
		v.Room = c.Key
	case chat.KindDirect:
		v.Peer = directPeer(c.Key, viewer)
	}
	return v
}

// directPeer returns the identity of a direct key that is not viewer.
func directPeer(key, viewer string) string {
	a, b, _ := strings.Cut(key, "\x00")
	if a == viewer {
		return b
	}
	return a
}
