package chatload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
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

// ErrClosed is returned for requests on a connection that has ended.
var ErrClosed = errors.New("chatload: connection closed")

// Conn is one joined WebSocket session. Requests may be made from any
// goroutine; replies are matched by request id.
type Conn struct {
	ws      *websocket.Conn
	onPush  func(string, json.RawMessage)
	rawPush func([]byte) bool
	Joined  Joined

	writeMu sync.Mutex
	nextID  atomic.Uint64

	mu      sync.Mutex
	waiters map[string]chan Envelope
	err     error
	done    chan struct{}
}

var defaultDialer = &websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   4096,
	WriteBufferSize:  4096,
}

// Dial opens the WebSocket, sends join and waits for joined. On a join
// error the server's error is returned as *ServerError.
func Dial(ctx context.Context, o DialOptions) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := o.Dialer
	if d == nil {
		d = defaultDialer
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	h := http.Header{}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := d.DialContext(ctx, o.URL, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", o.URL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", o.URL, err)
	}
	c := &Conn{ws: ws, onPush: o.OnPush, rawPush: o.RawPush, waiters: map[string]chan Envelope{}, done: make(chan struct{})}
	go c.readLoop()
	var j Joined
	if err := c.Request(ctx, TypeJoin, joinBody{Token: o.Token, Protocol: ProtocolVersion, Name: o.Name}, &j); err != nil {
		c.Close()
		return nil, fmt.Errorf("join: %w", err)
	}
	c.Joined = j
	return c, nil
}

// Call is a request on the wire whose reply has not been read yet.
type Call struct {
	c  *Conn
	id string
	ch chan Envelope
}

// Go writes a request and returns without waiting for the reply. Requests
// written by one goroutine reach the server in that order, and the server
// handles one connection's requests in order.
func (c *Conn) Go(typ string, data any) (*Call, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", typ, err)
	}
	id := strconv.FormatUint(c.nextID.Add(1), 36)
	call := &Call{c: c, id: id, ch: make(chan Envelope, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.waiters[id] = call.ch
	c.mu.Unlock()
	frame, _ := json.Marshal(Envelope{Type: typ, ID: id, Data: raw})
	if err := c.write(frame); err != nil {
		c.forget(id)
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	return call, nil
}

// Wait waits for the reply and decodes its data into out (may be nil). A
// server `error` reply is returned as *ServerError.
func (call *Call) Wait(ctx context.Context, out any) error {
	select {
	case env := <-call.ch:
		if env.Type == TypeError {
			var se ServerError
			_ = json.Unmarshal(env.Data, &se)
			return &se
		}
		if out != nil {
			if err := json.Unmarshal(env.Data, out); err != nil {
				return fmt.Errorf("decode %s: %w", env.Type, err)
			}
		}
		return nil
	case <-call.c.done:
		// The reply may have been read just before the connection ended.
		select {
		case env := <-call.ch:
			call.ch <- env
			return call.Wait(ctx, out)
		default:
		}
		return ErrClosed
	case <-ctx.Done():
		call.c.forget(call.id)
		return ctx.Err()
	}
}

// Request writes a request and waits for its reply.
func (c *Conn) Request(ctx context.Context, typ string, data, out any) error {
	call, err := c.Go(typ, data)
	if err != nil {
		return err
	}
	return call.Wait(ctx, out)
}

// Send stores a text message: it returns once the server acked it.
func (c *Conn) Send(ctx context.Context, convID, clientMsgID, text string) (Ack, error) {
	var a Ack
	err := c.Request(ctx, TypeChatSend, sendBody{ConversationID: convID, ClientMsgID: clientMsgID, Text: text}, &a)
	return a, err
}

// Sync sends chat_sync with the last seq held per conversation.
func (c *Conn) Sync(ctx context.Context, lastSeqs map[string]int64, limit int) (Synced, error) {
	if lastSeqs == nil {
		lastSeqs = map[string]int64{}
	}
	var s Synced
	err := c.Request(ctx, TypeChatSync, syncBody{LastSeqs: lastSeqs, Limit: limit}, &s)
	return s, err
}

// Range fetches events with seq > afterSeq, ascending.
func (c *Conn) Range(ctx context.Context, convID string, afterSeq int64, limit int) (Page, error) {
	var p Page
	err := c.Request(ctx, TypeChatRange, rangeBody{ConversationID: convID, AfterSeq: afterSeq, Limit: limit}, &p)
	return p, err
}

// CreateGroup creates a group conversation with the caller as admin.
func (c *Conn) CreateGroup(ctx context.Context, title string, members []string) (Conversation, error) {
	var b conversationBody
	err := c.Request(ctx, TypeChatGroup, groupBody{Title: title, Members: members}, &b)
	return b.Conversation, err
}

// Close ends the connection; pending requests fail with ErrClosed.
func (c *Conn) Close() error {
	err := c.ws.Close()
	<-c.done
	return err
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection ended (nil while it is up).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) write(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	// A bounded write: a server that stops reading must not hang us.
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

func (c *Conn) forget(id string) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

func (c *Conn) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		if err == nil {
			err = ErrClosed
		}
		c.err = err
		c.waiters = map[string]chan Envelope{}
		c.mu.Unlock()
		close(c.done)
		_ = c.ws.Close()
	}()
	for {
		var raw []byte
		_, raw, err = c.ws.ReadMessage()
		if err != nil {
			return
		}
		if c.rawPush != nil && c.rawPush(raw) {
			continue
		}
		var env Envelope
		if json.Unmarshal(raw, &env) != nil {
			continue // the protocol promises JSON; a bad frame is not ours to act on
		}
		if env.Type == TypePing {
			// Heartbeat: answer with the same ts, or the server drops us
			// after ping_timeout.
			var p pingBody
			_ = json.Unmarshal(env.Data, &p)
			pong, _ := json.Marshal(map[string]any{"type": TypePong, "data": p})
			if werr := c.write(pong); werr != nil {
				err = werr
				return
			}
			continue
		}
		if env.Re != "" {
			c.mu.Lock()
			ch, ok := c.waiters[env.Re]
			delete(c.waiters, env.Re)
			c.mu.Unlock()
			if ok {
				ch <- env
				continue
			}
		}
		if c.onPush != nil {
			c.onPush(env.Type, env.Data)
		}
	}
}
