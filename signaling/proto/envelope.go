// Package proto is the wire format of docs/protocol.md: every message
// type, its body, how a body checks itself, and the registry that says
// which types exist and what a connection needs before it may send one.
// It holds no connection state and imports no other part of signaling,
// so servers, test clients and load tools share one copy of the types.
package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ProtocolVersion is the version of docs/protocol.md this package speaks.
const ProtocolVersion = 1

// MaxIDBytes bounds a client's request id.
const MaxIDBytes = 64

// Error is a protocol-level failure that is reported to the client as an
// "error" message with Code.
type Error struct {
	Code    string
	Message string
	// URL is the node to join instead (CodeWrongNode); empty otherwise.
	URL string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// BadRequest is an Error with code bad_request.
func BadRequest(format string, args ...any) *Error {
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Envelope is the outer shape shared by every message.
type Envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Re   string          `json:"re,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Request is a decoded, validated client message. Body holds a pointer to
// the type's body struct (nil for types without a body).
type Request struct {
	Type string
	ID   string
	Body Body
}

// DecodeRequest parses and validates one client frame. Every failure is
// an *Error; when the envelope parsed, the returned Request still carries
// Type and ID so the error can answer the right request.
func DecodeRequest(frame []byte) (Request, *Error) {
	if !utf8.Valid(frame) {
		return Request{}, BadRequest("message is not valid UTF-8")
	}
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return Request{}, BadRequest("malformed JSON: %v", err)
	}
	req := Request{Type: env.Type, ID: env.ID}
	if len(env.ID) > MaxIDBytes {
		req.ID = ""
		return req, BadRequest("id longer than %d bytes", MaxIDBytes)
	}
	if env.Type == "" {
		return req, BadRequest("missing type")
	}
	if env.Re != "" {
		return req, BadRequest("re is only sent by the server")
	}
	spec, ok := Lookup(env.Type)
	if !ok {
		return req, &Error{Code: CodeUnknownType, Message: fmt.Sprintf("unknown message type %q", Truncate(env.Type, 32))}
	}
	if spec.New == nil {
		// No body; anything sent is ignored for forward compatibility.
		return req, nil
	}
	body := spec.New()
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || data[0] != '{' {
		return req, BadRequest("%s: data must be an object", env.Type)
	}
	if err := json.Unmarshal(data, body); err != nil {
		return req, BadRequest("%s: %v", env.Type, err)
	}
	if perr := body.Validate(env.Type); perr != nil {
		return req, perr
	}
	req.Body = body
	return req, nil
}

// Truncate shortens s to at most n bytes (plus "...") on a rune boundary,
// for echoing client input in error messages.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// Encode renders one server message. Marshal only fails on programmer
// error (unsupported types), so it panics rather than sending garbage.
func Encode(typ, re string, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("proto: encode %s: %v", typ, err))
	}
	out, err := json.Marshal(Envelope{Type: typ, Re: re, Data: raw})
	if err != nil {
		panic(fmt.Sprintf("proto: encode %s envelope: %v", typ, err))
	}
	return out
}
