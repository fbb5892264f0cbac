// Package chatload is a Go client of Parley's chat protocol
// (docs/protocol.md, "Chat, presence and calls") and the pieces built on
// it: a reconnecting session that keeps an outbox of unacknowledged
// messages and a gap-free copy of each conversation, and a load runner
// that measures persisted messages, deliveries and latency with many
// connections. Its connection is internal/wire's, shared with the call
// client, over signaling/proto's types.
package chatload

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/wire"
	"github.com/parleyhq/parley/signaling/proto"
)

// DialOptions configures one connection.
type DialOptions struct {
	URL    string // ws://host:port/ws
	Origin string // sent as Origin (a browser's page origin); empty sends none
	Token  string
	Name   string // optional display name for join
	// OnPush sees every server message that is not the reply to a
	// pending request (message, presence, conversation, errors without
	// re...). It runs on the reader goroutine: it must not block and must
	// not make requests on the same connection.
	OnPush func(typ string, data json.RawMessage)
	// RawPush, if set, sees every frame before it is decoded and may
	// consume it (return true): the load runner reads its timestamps
	// this way without decoding a hundred thousand frames a second. It
	// runs on the reader goroutine and must not keep frame.
	RawPush func(frame []byte) bool
	// Timeout bounds the WebSocket handshake and the join; 0 means 10 s.
	Timeout time.Duration
	// Dialer overrides the WebSocket dialer (buffer sizes for many
	// connections); nil uses a default with small buffers.
	Dialer *websocket.Dialer
}

// Conn is one joined chat session over internal/wire: requests from any
// goroutine, replies matched by id, plus the chat requests this package
// makes.
type Conn struct {
	*wire.Conn
}

// Dial opens the WebSocket, sends join and waits for joined. On a join
// error the server's error is returned as *ServerError.
func Dial(ctx context.Context, o DialOptions) (*Conn, error) {
	wo := wire.Options{URL: o.URL, Origin: o.Origin, Token: o.Token, Name: o.Name,
		RawPush: o.RawPush, Timeout: o.Timeout, Dialer: o.Dialer}
	if push := o.OnPush; push != nil {
		wo.OnPush = func(_ *wire.Conn, typ string, data json.RawMessage) { push(typ, data) }
	}
	c, err := wire.Dial(ctx, wo)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

// Send stores a text message: it returns once the server acked it.
func (c *Conn) Send(ctx context.Context, convID, clientMsgID, text string) (Ack, error) {
	var a Ack
	err := c.Request(ctx, proto.TypeChatSend, proto.ChatSendBody{ConversationID: convID, ClientMsgID: clientMsgID, Text: text}, &a)
	return a, err
}

// Sync sends chat_sync with the last seq held per conversation.
func (c *Conn) Sync(ctx context.Context, lastSeqs map[string]int64, limit int) (Synced, error) {
	if lastSeqs == nil {
		lastSeqs = map[string]int64{}
	}
	var s Synced
	err := c.Request(ctx, proto.TypeChatSync, proto.ChatSyncBody{LastSeqs: lastSeqs, Limit: limit}, &s)
	return s, err
}

// Range fetches events with seq > afterSeq, ascending.
func (c *Conn) Range(ctx context.Context, convID string, afterSeq int64, limit int) (Page, error) {
	var p Page
	err := c.Request(ctx, proto.TypeChatRange, proto.ChatRangeBody{ConversationID: convID, AfterSeq: afterSeq, Limit: limit}, &p)
	return p, err
}

// CreateGroup creates a group conversation with the caller as admin.
func (c *Conn) CreateGroup(ctx context.Context, title string, members []string) (Conversation, error) {
	var b proto.ConversationBody
	err := c.Request(ctx, proto.TypeChatGroup, proto.ChatGroupBody{Title: title, Members: members}, &b)
	return b.Conversation, err
}

// Direct opens (or finds) the direct conversation with identity.
func (c *Conn) Direct(ctx context.Context, identity string) (Conversation, error) {
	var b proto.ConversationBody
	err := c.Request(ctx, proto.TypeChatDirect, proto.ChatDirectBody{Identity: identity}, &b)
	return b.Conversation, err
}
