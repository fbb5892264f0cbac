package proto

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/chat"
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

// Validate checks ids and text; the client message id is normalised to
// the lower-case form the chat store de-duplicates on.
func (b *ChatSendBody) Validate(typ string) *Error {
	if perr := checkConvID(typ, b.ConversationID); perr != nil {
		return perr
	}
	if perr := normClientMsgID(typ, &b.ClientMsgID); perr != nil {
		return perr
	}
	return checkText(typ, b.Text)
}

// ChatEditBody is the body of "chat_edit".
type ChatEditBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	TargetSeq      int64  `json:"targetSeq"`
	Text           string `json:"text"`
}

// Validate checks ids, the target and the new text.
func (b *ChatEditBody) Validate(typ string) *Error {
	if perr := checkConvID(typ, b.ConversationID); perr != nil {
		return perr
	}
	if perr := normClientMsgID(typ, &b.ClientMsgID); perr != nil {
		return perr
	}
	if b.TargetSeq <= 0 {
		return BadRequest("%s: targetSeq must be positive", typ)
	}
	return checkText(typ, b.Text)
}

// ChatDeleteBody is the body of "chat_delete".
type ChatDeleteBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	TargetSeq      int64  `json:"targetSeq"`
}

// Validate checks ids and the target.
func (b *ChatDeleteBody) Validate(typ string) *Error {
	if perr := checkConvID(typ, b.ConversationID); perr != nil {
		return perr
	}
	if perr := normClientMsgID(typ, &b.ClientMsgID); perr != nil {
		return perr
	}
	if b.TargetSeq <= 0 {
		return BadRequest("%s: targetSeq must be positive", typ)
	}
	return nil
}

// ChatSyncBody is the body of "chat_sync": the newest seq the client holds
// per conversation, and the most missed events it wants per conversation.
type ChatSyncBody struct {
	LastSeqs map[string]int64 `json:"lastSeqs"`
	Limit    int              `json:"limit,omitempty"`
}

// Validate bounds the map and checks every entry.
func (b *ChatSyncBody) Validate(typ string) *Error {
	if len(b.LastSeqs) > maxSyncConversations {
		return BadRequest("%s: lastSeqs names more than %d conversations", typ, maxSyncConversations)
	}
	for id, seq := range b.LastSeqs {
		if perr := checkConvID(typ, id); perr != nil {
			return perr
		}
		if seq < 0 {
			return BadRequest("%s: lastSeqs values must not be negative", typ)
		}
	}
	return checkLimit(typ, b.Limit)
}

// ChatHistoryBody is the body of "chat_history" (scroll-back).
type ChatHistoryBody struct {
	ConversationID string `json:"conversationId"`
	BeforeSeq      int64  `json:"beforeSeq,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

// Validate checks the conversation and the page bounds.
func (b *ChatHistoryBody) Validate(typ string) *Error {
	if perr := checkConvID(typ, b.ConversationID); perr != nil {
		return perr
	}
	if b.BeforeSeq < 0 {
		return BadRequest("%s: beforeSeq must not be negative", typ)
	}
	return checkLimit(typ, b.Limit)
}

// ChatRangeBody is the body of "chat_range" (gap refill).
type ChatRangeBody struct {
	ConversationID string `json:"conversationId"`
	AfterSeq       int64  `json:"afterSeq"`
	Limit          int    `json:"limit,omitempty"`
}

// Validate checks the conversation and the page bounds.
func (b *ChatRangeBody) Validate(typ string) *Error {
	if perr := checkConvID(typ, b.ConversationID); perr != nil {
		return perr
	}
	if b.AfterSeq < 0 {
		return BadRequest("%s: afterSeq must not be negative", typ)
	}
	return checkLimit(typ, b.Limit)
}

// ChatReceiptBody is the body of "chat_receipt": delivered and/or read up
// to a seq (0 leaves a watermark as is).
type ChatReceiptBody struct {
	ConversationID string `json:"conversationId"`
	Delivered      int64  `json:"delivered,omitempty"`
	Read           int64  `json:"read,omitempty"`
}

// Validate requires at least one positive mark.
func (b *ChatReceiptBody) Validate(typ string) *Error {
	if perr := checkConvID(typ, b.ConversationID); perr != nil {
		return perr
	}
	if b.Delivered < 0 || b.Read < 0 || b.Delivered == 0 && b.Read == 0 {
		return BadRequest("%s: give a positive delivered and/or read seq", typ)
	}
	return nil
}

// ChatDirectBody is the body of "chat_direct".
type ChatDirectBody struct {
	Identity string `json:"identity"`
}

// Validate checks the peer's identity.
func (b *ChatDirectBody) Validate(typ string) *Error {
	return checkIdentity(typ, "identity", b.Identity)
}

// ChatGroupBody is the body of "chat_group".
type ChatGroupBody struct {
	Title   string   `json:"title,omitempty"`
	Members []string `json:"members"`
}

// Validate checks the title and every member identity.
func (b *ChatGroupBody) Validate(typ string) *Error {
	if b.Title != "" {
		if err := chat.ValidateTitle(b.Title); err != nil {
			return BadRequest("%s: title: %s", typ, TrimChatErr(err))
		}
	}
	if len(b.Members) == 0 || len(b.Members) > maxGroupMemberList {
		return BadRequest("%s: members must list 1 to %d identities", typ, maxGroupMemberList)
	}
	for _, m := range b.Members {
		if perr := checkIdentity(typ, "members", m); perr != nil {
			return perr
		}
	}
	return nil
}

// TypingBody is the body of the client's "typing".
type TypingBody struct {
	ConversationID string `json:"conversationId"`
}

// Validate checks the conversation id.
func (b *TypingBody) Validate(typ string) *Error { return checkConvID(typ, b.ConversationID) }

func checkConvID(typ, id string) *Error {
	if id == "" {
		return BadRequest("%s: conversationId is required", typ)
	}
	if len(id) > maxChatIDBytes || !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return BadRequest("%s: conversationId is malformed", typ)
	}
	return nil
}

func checkIdentity(typ, field, id string) *Error {
	if err := chat.ValidateIdentity(chat.Identity{ID: id}); err != nil {
		return BadRequest("%s: %s: %s", typ, field, TrimChatErr(err))
	}
	return nil
}

func normClientMsgID(typ string, id *string) *Error {
	n, err := chat.ParseClientMsgID(*id)
	if err != nil {
		return BadRequest("%s: clientMsgId must be a UUID (36 characters)", typ)
	}
	*id = n
	return nil
}

// checkText only rejects what cannot be a message at all; the size limit
// is the chat service's (answered with too_large, connection kept).
func checkText(typ, text string) *Error {
	if text == "" {
		return BadRequest("%s: text is required", typ)
	}
	if len(text) > maxChatTextBytes {
		return &Error{Code: CodeTooLarge, Message: typ + ": text too large"}
	}
	return nil
}

func checkLimit(typ string, limit int) *Error {
	if limit < 0 {
		return BadRequest("%s: limit must not be negative", typ)
	}
	return nil
}

// TrimChatErr drops the "chat: invalid input: " prefix of chat errors so
// the client sees only the useful part.
func TrimChatErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "chat: ") {
		return msg[i+2:]
	}
	return msg
}
