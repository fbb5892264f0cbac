package chat

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the messages that
// wrap them say which field or id was wrong so a transport can pass the text
// to the client.
var (
	// ErrInvalid: malformed input (bad UTF-8, empty text, bad UUID, bad id).
	ErrInvalid = errors.New("chat: invalid input")
	// ErrTooLarge: a text or name longer than its configured limit.
	ErrTooLarge = errors.New("chat: too large")
	// ErrNotMember: the identity is not a member of the conversation.
	ErrNotMember = errors.New("chat: not a member")
	// ErrNotFound: no such conversation or message.
	ErrNotFound = errors.New("chat: not found")
	// ErrForbidden: a member tried something their role does not allow,
	// such as editing someone else's message.
	ErrForbidden = errors.New("chat: forbidden")
	// ErrConflict: a client message id was reused for different content, or
	// a create collided with an existing conversation of another shape.
	ErrConflict = errors.New("chat: conflict")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("chat: store closed")
)
