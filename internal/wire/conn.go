// Package wire is the Go client side of Parley's signaling protocol
// (docs/protocol.md): one WebSocket, joined, with requests matched to
// their replies by id, the heartbeat answered, and everything else
// handed to the caller. It speaks signaling/proto's types, the same the
// server uses, which TestRegistryMatchesProtocolDoc ties to the
// document. The call client (internal/client) and the chat load client
// (internal/chatload) are both built on it.
package wire

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

	"github.com/parleyhq/parley/signaling/proto"
)

// Options configures one connection.
type Options struct {
	URL    string // ws://host:port/ws
	Origin string // sent as Origin (a browser's page origin); empty sends none
	Token  string
	Name   string // optional display name for join
	// Intercept, if set, sees every decoded message first, on the reader
	// goroutine, and may rewrite it (a client applies an SDP answer here,
	// in arrival order, and turns a failure into an error reply).
	Intercept func(c *Conn, env *proto.Envelope)
	// OnPush sees every server message that is not the reply to a
	// pending request (pushes, errors without re...), except pings,
	// which Conn answers. It runs on the reader goroutine: it must not
	// block and must not wait for replies on the same connection
	// (Notify is fine).
	OnPush func(c *Conn, typ string, data json.RawMessage)
	// RawPush, if set, sees every frame before it is decoded and may
	// consume it (return true): a load runner reads its timestamps this
	// way without decoding a hundred thousand frames a second. It runs on
	// the reader goroutine and must not keep frame.
	RawPush func(frame []byte) bool
	// Timeout bounds the WebSocket handshake and the join; 0 means 10 s.
	Timeout time.Duration
	// Dialer overrides the WebSocket dialer (buffer sizes for many
	// connections); nil uses a default with small buffers.
	Dialer *websocket.Dialer
}

// ErrClosed is returned for requests on a connection that has ended.
var ErrClosed = errors.New("wire: connection closed")

// ServerError is an `error` message from the server.
type ServerError proto.ErrorBody

func (e *ServerError) Error() string { return e.Code + ": " + e.Message }

// writeTimeout bounds one write: a server that stops reading must not
// hang the client.
const writeTimeout = 10 * time.Second

// Conn is one joined WebSocket session. Requests may be made from any
// goroutine; replies are matched by request id.
type Conn struct {
	ws        *websocket.Conn
	intercept func(*Conn, *proto.Envelope)
	onPush    func(*Conn, string, json.RawMessage)
	rawPush   func([]byte) bool
	// Joined is the server's answer to join.
	Joined proto.JoinedBody

	writeMu sync.Mutex
	nextID  atomic.Uint64

	mu      sync.Mutex
	waiters map[string]chan proto.Envelope
	err     error
	done    chan struct{}
}

func defaultDialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}
}

// Dial opens the WebSocket, sends join and waits for joined. On a join
// error the server's error is returned as *ServerError.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := o.Dialer
	if d == nil {
		d = defaultDialer()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	h := http.Header{}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := d.DialContext(ctx, o.URL, h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", o.URL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", o.URL, err)
	}
	c := &Conn{ws: ws, intercept: o.Intercept, onPush: o.OnPush, rawPush: o.RawPush,
		waiters: map[string]chan proto.Envelope{}, done: make(chan struct{})}
	go c.readLoop()
	var j proto.JoinedBody
	if err := c.Request(ctx, proto.TypeJoin, proto.JoinBody{Token: o.Token, Protocol: proto.ProtocolVersion, Name: o.Name}, &j); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("join: %w", err)
	}
	c.Joined = j
	return c, nil
}

// Call is a request on the wire whose reply has not been read yet.
type Call struct {
	c  *Conn
	id string
	ch chan proto.Envelope
}

// Go writes a request and returns without waiting for the reply. Requests
// written by one goroutine reach the server in that order, and the server
// handles one connection's requests in order.
func (c *Conn) Go(typ string, data any) (*Call, error) {
	id := strconv.FormatUint(c.nextID.Add(1), 36)
	call := &Call{c: c, id: id, ch: make(chan proto.Envelope, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.waiters[id] = call.ch
	c.mu.Unlock()
	if err := c.send(typ, id, data); err != nil {
		c.forget(id)
		return nil, err
	}
	return call, nil
}

// Wait waits for the reply and decodes its data into out (may be nil). A
// server `error` reply is returned as *ServerError.
func (call *Call) Wait(ctx context.Context, out any) error {
	select {
	case env := <-call.ch:
		if env.Type == proto.TypeError {
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

// Notify writes a message that expects no reply (data may be nil).
func (c *Conn) Notify(typ string, data any) error { return c.send(typ, "", data) }

func (c *Conn) send(typ, id string, data any) error {
	env := proto.Envelope{Type: typ, ID: id}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("%s: encode: %w", typ, err)
		}
		env.Data = raw
	}
	frame, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", typ, err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	return nil
}

// Close ends the connection; pending requests fail with ErrClosed. It
// returns after the reader has stopped.
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
		c.waiters = map[string]chan proto.Envelope{}
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
		var env proto.Envelope
		if json.Unmarshal(raw, &env) != nil {
			continue // the protocol promises JSON; a bad frame is not ours to act on
		}
		if env.Type == proto.TypePing {
			// Heartbeat: answer with the same ts, or the server drops us
			// after ping_timeout.
			var p proto.PingBody
			_ = json.Unmarshal(env.Data, &p)
			if err = c.Notify(proto.TypePong, p); err != nil {
				return
			}
			continue
		}
		if c.intercept != nil {
			c.intercept(c, &env)
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
			c.onPush(c, env.Type, env.Data)
		}
	}
}
