package proto

import (
	"fmt"
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
	return check(typ).convID(b.ConversationID).clientMsgID(&b.ClientMsgID).text(b.Text).err
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
	return check(typ).convID(b.ConversationID).clientMsgID(&b.ClientMsgID).
		positive("targetSeq", b.TargetSeq).text(b.Text).err
}

// ChatReactBody is the body of "chat_react": add (or, with remove, take
// back) an emoji reaction to the text message at targetSeq.
type ChatReactBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	TargetSeq      int64  `json:"targetSeq"`
	Emoji          string `json:"emoji"`
	Remove         bool   `json:"remove,omitempty"`
}

// Validate checks ids, the target and the emoji (one of chat.Reactions).
func (b *ChatReactBody) Validate(typ string) *Error {
	return check(typ).convID(b.ConversationID).clientMsgID(&b.ClientMsgID).
		positive("targetSeq", b.TargetSeq).chatErr("emoji", chat.ValidateReaction(b.Emoji)).err
}

// ChatDeleteBody is the body of "chat_delete".
type ChatDeleteBody struct {
	ConversationID string `json:"conversationId"`
	ClientMsgID    string `json:"clientMsgId"`
	TargetSeq      int64  `json:"targetSeq"`
}

// Validate checks ids and the target.
func (b *ChatDeleteBody) Validate(typ string) *Error {
	return check(typ).convID(b.ConversationID).clientMsgID(&b.ClientMsgID).
		positive("targetSeq", b.TargetSeq).err
}

// ChatSyncBody is the body of "chat_sync": the newest seq the client holds
// per conversation, and the most missed events it wants per conversation.
type ChatSyncBody struct {
	LastSeqs map[string]int64 `json:"lastSeqs"`
	Limit    int              `json:"limit,omitempty"`
}

// Validate bounds the map and checks every entry.
func (b *ChatSyncBody) Validate(typ string) *Error {
	c := check(typ).badIf(len(b.LastSeqs) > maxSyncConversations,
		"lastSeqs names more than %d conversations", maxSyncConversations)
	for id, seq := range b.LastSeqs {
		if c.convID(id).notNegative("lastSeqs values", seq).err != nil {
			return c.err
		}
	}
	return c.limit(b.Limit).err
}

// ChatHistoryBody is the body of "chat_history" (scroll-back).
type ChatHistoryBody struct {
	ConversationID string `json:"conversationId"`
	BeforeSeq      int64  `json:"beforeSeq,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

// Validate checks the conversation and the page bounds.
func (b *ChatHistoryBody) Validate(typ string) *Error {
	return check(typ).convID(b.ConversationID).notNegative("beforeSeq", b.BeforeSeq).limit(b.Limit).err
}

// ChatRangeBody is the body of "chat_range" (gap refill).
type ChatRangeBody struct {
	ConversationID string `json:"conversationId"`
	AfterSeq       int64  `json:"afterSeq"`
	Limit          int    `json:"limit,omitempty"`
}

// Validate checks the conversation and the page bounds.
func (b *ChatRangeBody) Validate(typ string) *Error {
	return check(typ).convID(b.ConversationID).notNegative("afterSeq", b.AfterSeq).limit(b.Limit).err
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
	return check(typ).convID(b.ConversationID).badIf(b.Delivered < 0 || b.Read < 0 || b.Delivered == 0 && b.Read == 0,
		"give a positive delivered and/or read seq").err
}

// ChatDirectBody is the body of "chat_direct".
type ChatDirectBody struct {
	Identity string `json:"identity"`
}

// Validate checks the peer's identity.
func (b *ChatDirectBody) Validate(typ string) *Error {
	return check(typ).identity("identity", b.Identity).err
}

// ChatGroupBody is the body of "chat_group".
type ChatGroupBody struct {
	Title   string   `json:"title,omitempty"`
	Members []string `json:"members"`
}

// Validate checks the title and every member identity.
func (b *ChatGroupBody) Validate(typ string) *Error {
	c := check(typ)
	if b.Title != "" {
		c.chatErr("title", chat.ValidateTitle(b.Title))
	}
	c.badIf(len(b.Members) == 0 || len(b.Members) > maxGroupMemberList,
		"members must list 1 to %d identities", maxGroupMemberList)
	for _, m := range b.Members {
		if c.identity("members", m).err != nil {
			break
		}
	}
	return c.err
}

// TypingBody is the body of the client's "typing".
type TypingBody struct {
	ConversationID string `json:"conversationId"`
}

// Validate checks the conversation id.
func (b *TypingBody) Validate(typ string) *Error { return check(typ).convID(b.ConversationID).err }

// checks runs a body's checks in order and keeps the first failure, as
// bufio.Scanner keeps its first error: once one check has failed the
// later ones do nothing (and normalise nothing), so a Validate method
// is one chain naming the checks its type needs. Messages are
// "<type>: <what is wrong>".
type checks struct {
	typ string
	err *Error
}

func check(typ string) *checks { return &checks{typ: typ} }

// badIf fails with bad_request when bad holds.
func (c *checks) badIf(bad bool, format string, args ...any) *checks {
	if bad && c.err == nil {
		c.err = BadRequest("%s: %s", c.typ, fmt.Sprintf(format, args...))
	}
	return c
}

// chatErr fails with bad_request naming field when the chat package
// refused it.
func (c *checks) chatErr(field string, err error) *checks {
	if err != nil {
		c.badIf(true, "%s: %s", field, TrimChatErr(err))
	}
	return c
}

func (c *checks) convID(id string) *checks {
	if c.err != nil {
		return c
	}
	return c.badIf(id == "", "conversationId is required").
		badIf(len(id) > maxChatIDBytes || !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0,
			"conversationId is malformed")
}

func (c *checks) identity(field, id string) *checks {
	if c.err != nil {
		return c
	}
	return c.chatErr(field, chat.ValidateIdentity(chat.Identity{ID: id}))
}

// uuid requires a UUID and normalises *id to its lower-case form; msg
// says what was wrong.
func (c *checks) uuid(id *string, msg string) *checks {
	if c.err != nil {
		return c
	}
	n, err := chat.ParseClientMsgID(*id)
	if err != nil {
		return c.badIf(true, "%s", msg)
	}
	*id = n
	return c
}

func (c *checks) clientMsgID(id *string) *checks {
	return c.uuid(id, "clientMsgId must be a UUID (36 characters)")
}

// text only rejects what cannot be a message at all; the size limit
// is the chat service's (answered with too_large, connection kept).
func (c *checks) text(text string) *checks {
	c.badIf(text == "", "text is required")
	if c.err == nil && len(text) > maxChatTextBytes {
		c.err = &Error{Code: CodeTooLarge, Message: c.typ + ": text too large"}
	}
	return c
}

func (c *checks) positive(field string, v int64) *checks {
	return c.badIf(v <= 0, "%s must be positive", field)
}

func (c *checks) notNegative(field string, v int64) *checks {
	return c.badIf(v < 0, "%s must not be negative", field)
}

func (c *checks) limit(limit int) *checks { return c.notNegative("limit", int64(limit)) }

// TrimChatErr drops the "chat: invalid input: " prefix of chat errors so
// the client sees only the useful part.
func TrimChatErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "chat: ") {
		return msg[i+2:]
	}
	return msg
}
