package chat

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

const (
	// DefaultMaxMessageBytes bounds a message's text in bytes of UTF-8.
	DefaultMaxMessageBytes = 4096
	// MaxIDBytes bounds identity ids, room names and conversation ids.
	MaxIDBytes = 128
	// MaxNameBytes bounds display names and group titles.
	MaxNameBytes = 128
)

// ParseClientMsgID checks that s is a UUID in its canonical 36-character
// form and returns it lower-cased, so that the same id sent with different
// letter case by a buggy client still de-duplicates. Braced and urn: forms
// are refused: one spelling per id keeps the dedup key unambiguous.
func ParseClientMsgID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%w: client message id must be a 36-character UUID", ErrInvalid)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: client message id: %w", ErrInvalid, err)
	}
	if u == uuid.Nil {
		return "", fmt.Errorf("%w: client message id must not be the nil UUID", ErrInvalid)
	}
	return u.String(), nil
}

// ValidateText checks a message body: valid UTF-8, at most maxBytes bytes,
// not blank, and free of control characters other than tab and newlines
// (they break terminals and log lines and no keyboard types them).
func ValidateText(text string, maxBytes int) error {
	if len(text) > maxBytes {
		return fmt.Errorf("%w: text is %d bytes, limit %d", ErrTooLarge, len(text), maxBytes)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: text is not valid UTF-8", ErrInvalid)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%w: text is empty", ErrInvalid)
	}
	if i := strings.IndexFunc(text, badTextRune); i >= 0 {
		return fmt.Errorf("%w: text has control character %U at byte %d", ErrInvalid, []rune(text[i:])[0], i)
	}
	return nil
}

func badTextRune(r rune) bool {
	return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
}

// validToken checks an id-like string: non-empty, at most max bytes, valid
// UTF-8, no spaces at either end and no control characters.
func validToken(what, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%w: %s has leading or trailing space", ErrInvalid, what)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: %s has a control character", ErrInvalid, what)
	}
	return nil
}

// ValidateIdentity checks an identity's id (required) and display name
// (optional; stored as given).
func ValidateIdentity(id Identity) error {
	if err := validToken("identity id", id.ID, MaxIDBytes); err != nil {
		return err
	}
	if id.Name == "" {
		return nil
	}
	return validToken("display name", id.Name, MaxNameBytes)
}

// ValidateRoomName checks the name a room conversation is keyed by.
func ValidateRoomName(name string) error {
	return validToken("room name", name, MaxIDBytes)
}

// ValidateTitle checks a group title; empty is allowed.
func ValidateTitle(title string) error {
	if title == "" {
		return nil
	}
	return validToken("title", title, MaxNameBytes)
}

// ValidateEvent checks an event before it is stored, per kind: text and
// system need text; edit needs text and a target; delete needs a target and
// no text; call entries may carry a short note. maxBytes bounds the text.
// Store implementations call it too, so nothing malformed reaches disk even
// if a caller skips Service.
func ValidateEvent(m Message, maxBytes int) error {
	if !m.Kind.Valid() {
		return fmt.Errorf("%w: unknown event kind %q", ErrInvalid, m.Kind)
	}
	if err := validToken("conversation id", m.ConversationID, MaxIDBytes); err != nil {
		return err
	}
	if _, err := ParseClientMsgID(m.ClientMsgID); err != nil {
		return err
	}
	if m.Sender.ID != "" || m.Kind != EventSystem {
		if err := ValidateIdentity(m.Sender); err != nil {
			return err
		}
	}
	if m.Kind.Targets() {
		if m.TargetSeq <= 0 {
			return fmt.Errorf("%w: %s needs a target seq", ErrInvalid, m.Kind)
		}
	} else if m.TargetSeq != 0 {
		return fmt.Errorf("%w: %s must not have a target seq", ErrInvalid, m.Kind)
	}
	switch m.Kind {
	case EventText, EventEdit, EventSystem:
		return ValidateText(m.Text, maxBytes)
	case EventDelete:
		if m.Text != "" {
			return fmt.Errorf("%w: delete must not carry text", ErrInvalid)
		}
	case EventReact, EventUnreact:
		return ValidateReaction(m.Text)
	case EventCallMissed, EventCallDeclined:
		if m.Text != "" {
			return ValidateText(m.Text, maxBytes)
		}
	}
	return nil
}
