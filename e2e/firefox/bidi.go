package firefox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxBiDiMessage bounds one frame from the browser: results here are small
// JSON strings, so anything near this is a bug, not data to keep.
const maxBiDiMessage = 16 << 20

// ErrBiDiClosed is returned for commands on (or pending at) a closed
// connection.
var ErrBiDiClosed = errors.New("webdriver bidi: connection closed")

// BiDiError is an error response to a command, as the protocol defines
// it: an error code such as "no such frame", and a message.
type BiDiError struct {
	Method  string
	Code    string
	Message string
}

func (e *BiDiError) Error() string {
	return fmt.Sprintf("webdriver bidi %s: %s: %s", e.Method, e.Code, e.Message)
}

// Event is one event the browser pushed (after session.subscribe).
type Event struct {
	Method string
	Params json.RawMessage
}

// BiDi is a minimal WebDriver BiDi client: commands carry increasing ids
// and each waits for the response with the same id; events go to the
// handler given to DialBiDi. It is safe for concurrent use.
type BiDi struct {
	ws      *websocket.Conn
	onEvent func(Event)
	done    chan struct{} // closed when the reader stops
	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan bidiResponse
	err     error // why the reader stopped
}

type bidiResponse struct {
	result json.RawMessage
	err    error
}

// frame is every message the remote end sends: a command response
// (type success/error, with id), or an event (type event, with method).
type frame struct {
	Type    string          `json:"type"`
	ID      *int64          `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// DialBiDi connects to a WebDriver BiDi endpoint such as
// ws://127.0.0.1:<port>/session. onEvent (may be nil) runs on the reader
// goroutine, so it must not block or issue commands.
func DialBiDi(ctx context.Context, url string, onEvent func(Event)) (*BiDi, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	// No Origin header: the remote agent refuses cross-origin upgrades.
	ws, resp, err := d.DialContext(ctx, url, http.Header{})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("webdriver bidi: dial %s: %w (HTTP %s)", url, err, resp.Status)
		}
		return nil, fmt.Errorf("webdriver bidi: dial %s: %w", url, err)
	}
	ws.SetReadLimit(maxBiDiMessage)
	c := &BiDi{
		ws:      ws,
		onEvent: onEvent,
		done:    make(chan struct{}),
		pending: map[int64]chan bidiResponse{},
	}
	go c.read()
	return c, nil
}

func (c *BiDi) read() {
	defer close(c.done)
	var stop error
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			stop = fmt.Errorf("%w: %w", ErrBiDiClosed, err)
			break
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			// One undecodable frame would leave a command waiting for
			// ever if it were its response; fail loudly instead.
			stop = fmt.Errorf("webdriver bidi: bad frame %.200q: %w", data, err)
			break
		}
		switch {
		case f.Type == "event":
			if c.onEvent != nil {
				c.onEvent(Event{Method: f.Method, Params: f.Params})
			}
		case f.ID != nil:
			c.mu.Lock()
			ch := c.pending[*f.ID]
			delete(c.pending, *f.ID)
			c.mu.Unlock()
			if ch == nil {
				continue // its caller gave up already
			}
			if f.Type == "error" {
				ch <- bidiResponse{err: &BiDiError{Code: f.Error, Message: f.Message}}
			} else {
				ch <- bidiResponse{result: f.Result}
			}
		default:
			// An error without id answers a message the browser could
			// not parse at all; every command we send has an id, so
			// this is a protocol bug worth stopping for.
			stop = fmt.Errorf("webdriver bidi: unexpected frame %.200q", data)
		}
		if stop != nil {
			break
		}
	}
	_ = c.ws.Close()
	c.mu.Lock()
	c.err = stop
	for id, ch := range c.pending {
		ch <- bidiResponse{err: stop}
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// Call sends one command and waits for its response, for ctx or at most
// limit, whichever ends first. The result is the raw "result" object.
func (c *BiDi) Call(ctx context.Context, limit time.Duration, method string, params any) (json.RawMessage, error) {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan bidiResponse, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		forget()
		return nil, fmt.Errorf("webdriver bidi %s: encode: %w", method, err)
	}
	c.writeMu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(limit))
	err = c.ws.WriteMessage(websocket.TextMessage, msg)
	c.writeMu.Unlock()
	if err != nil {
		forget()
		return nil, fmt.Errorf("webdriver bidi %s: send: %w", method, err)
	}

	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case r := <-ch:
		var be *BiDiError
		if errors.As(r.err, &be) {
			be.Method = method
			return nil, be
		}
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", method, r.err)
		}
		return r.result, nil
	case <-timer.C:
		forget()
		return nil, fmt.Errorf("webdriver bidi %s: no response within %v", method, limit)
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("webdriver bidi %s: %w", method, ctx.Err())
	}
}

// Close closes the socket and waits (bounded) for the reader to stop.
func (c *BiDi) Close() error {
	err := c.ws.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		return errors.New("webdriver bidi: reader did not stop within 5 s")
	}
	return err
}
