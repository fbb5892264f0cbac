package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what a Service needs from outside.
type Deps struct {
	Store  Store
	Logger *slog.Logger // nil: discard
	// Registerer receives the parley_chat_* metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// Service is the chat domain logic over a Store: validation, permissions,
// page caps and metrics. It holds no goroutines and no per-connection
// state, so any number of transport connections can share one.
type Service struct {
	cfg   Config
	store Store
	log   *slog.Logger
	m     *metrics
}

// New builds a Service.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if deps.Store == nil {
		return nil, errors.New("chat: Deps.Store is nil")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: deps.Store, log: log, m: m}, nil
}

// JoinRoom returns the room's conversation, creating it on first use, and
// makes who a member with role (updating name and role if already one).
func (s *Service) JoinRoom(ctx context.Context, room string, who Identity, role Role) (Conversation, error) {
	conv, err := s.store.EnsureRoom(ctx, room)
	if err != nil {
		return Conversation{}, err
	}
	if err := s.store.AddMember(ctx, Member{ConversationID: conv.ID, Identity: who, Role: role}); err != nil {
		return Conversation{}, err
	}
	return conv, nil
}

// Direct returns the one conversation between a and b.
func (s *Service) Direct(ctx context.Context, a, b Identity) (Conversation, error) {
	return s.store.EnsureDirect(ctx, a, b)
}

// CreateGroup creates a group with creator as admin.
func (s *Service) CreateGroup(ctx context.Context, creator Identity, title string, members []Identity) (Conversation, error) {
	if n := len(members) + 1; n > s.cfg.MaxGroupMembers {
		return Conversation{}, fmt.Errorf("group: %w: %d members, limit %d (chat.max_group_members)", ErrTooLarge, n, s.cfg.MaxGroupMembers)
	}
	return s.store.CreateGroup(ctx, title, creator, members)
}

// AddToGroup lets a group admin add who as a plain member.
func (s *Service) AddToGroup(ctx context.Context, admin Identity, convID string, who Identity) error {
	conv, err := s.store.Conversation(ctx, convID)
	if err != nil {
		return err
	}
	if conv.Kind != KindGroup {
		return fmt.Errorf("add to %s: %w: not a group", convID, ErrInvalid)
	}
	m, err := s.store.Member(ctx, convID, admin.ID)
	if err != nil {
		return err
	}
	if m.Role != RoleAdmin {
		return fmt.Errorf("add to %s: %w: only admins add members", convID, ErrForbidden)
	}
	return s.store.AddMember(ctx, Member{ConversationID: convID, Identity: who, Role: RoleMember})
}

// Send stores a text message and returns its ack once durable. Retrying
// with the same clientMsgID returns the original ack with Duplicate set.
func (s *Service) Send(ctx context.Context, sender Identity, convID, clientMsgID, text string) (Ack, error) {
	if err := ValidateText(text, s.cfg.MaxMessageBytes); err != nil {
		return s.reject("send", err)
	}
	// Membership is checked by the store inside the append transaction,
	// after the duplicate lookup, so a retry still gets its original ack.
	return s.append(ctx, Message{ConversationID: convID, ClientMsgID: clientMsgID, Sender: sender, Kind: EventText, Text: text})
}

// Edit replaces the text of the sender's own earlier text message. An edit
// of a message that was deleted meanwhile is stored but has no effect: Fold
// ignores edits after a delete, so every client still agrees.
func (s *Service) Edit(ctx context.Context, sender Identity, convID, clientMsgID string, targetSeq int64, text string) (Ack, error) {
	if err := ValidateText(text, s.cfg.MaxMessageBytes); err != nil {
		return s.reject("edit", err)
	}
	target, _, err := s.target(ctx, sender, convID, targetSeq)
	if err != nil {
		return s.reject("edit", err)
	}
	if target.Kind != EventText {
		return s.reject("edit", fmt.Errorf("%w: seq %d is a %s event; only text can be edited", ErrInvalid, targetSeq, target.Kind))
	}
	if target.Sender.ID != sender.ID {
		return s.reject("edit", fmt.Errorf("%w: only the author edits a message", ErrForbidden))
	}
	return s.append(ctx, Message{ConversationID: convID, ClientMsgID: clientMsgID, Sender: sender, Kind: EventEdit, Text: text, TargetSeq: targetSeq})
}

// Delete turns an earlier message into a tombstone. The author may delete
// their own messages; an admin of the conversation may delete any.
func (s *Service) Delete(ctx context.Context, sender Identity, convID, clientMsgID string, targetSeq int64) (Ack, error) {
	target, member, err := s.target(ctx, sender, convID, targetSeq)
	if err != nil {
		return s.reject("delete", err)
	}
	if !target.Kind.Visible() {
		return s.reject("delete", fmt.Errorf("%w: seq %d is a %s event, not a message", ErrInvalid, targetSeq, target.Kind))
	}
	if target.Sender.ID != sender.ID && member.Role != RoleAdmin {
		return s.reject("delete", fmt.Errorf("%w: only the author or an admin deletes a message", ErrForbidden))
	}
	return s.append(ctx, Message{ConversationID: convID, ClientMsgID: clientMsgID, Sender: sender, Kind: EventDelete, TargetSeq: targetSeq})
}

// target loads the member and the event an edit or delete points at.
func (s *Service) target(ctx context.Context, sender Identity, convID string, seq int64) (Message, Member, error) {
	if seq <= 0 {
		return Message{}, Member{}, fmt.Errorf("%w: target seq must be positive", ErrInvalid)
	}
	member, err := s.store.Member(ctx, convID, sender.ID)
	if err != nil {
		return Message{}, Member{}, err
	}
	target, err := s.store.Event(ctx, convID, seq)
	if err != nil {
		return Message{}, Member{}, err
	}
	return target, member, nil
}

// CallRecord describes an IM-style call invitation that did not connect.
type CallRecord struct {
	// CallID is the invitation's UUID; it is the event's client message
	// id, so recording the same call twice stores it once.
	CallID string
	Caller Identity
	Callee Identity
	// Outcome is EventCallMissed or EventCallDeclined.
	Outcome EventKind
	// Note is optional text shown with the entry (for example the room).
	Note string
}

// RecordCall appends a missed or declined call entry, sent by the caller,
// to the direct conversation of caller and callee (created if needed).
func (s *Service) RecordCall(ctx context.Context, c CallRecord) (Ack, error) {
	if c.Outcome != EventCallMissed && c.Outcome != EventCallDeclined {
		return s.reject("record call", fmt.Errorf("%w: outcome %q is not a call outcome", ErrInvalid, c.Outcome))
	}
	conv, err := s.store.EnsureDirect(ctx, c.Caller, c.Callee)
	if err != nil {
		return s.reject("record call", err)
	}
	return s.append(ctx, Message{ConversationID: conv.ID, ClientMsgID: c.CallID, Sender: c.Caller, Kind: c.Outcome, Text: c.Note})
}

// SystemNotice appends a server notice (no sender) to a conversation.
// noticeID is a UUID chosen by the caller so a retried notice is stored once.
func (s *Service) SystemNotice(ctx context.Context, convID, noticeID, text string) (Ack, error) {
	return s.append(ctx, Message{ConversationID: convID, ClientMsgID: noticeID, Kind: EventSystem, Text: text})
}

func (s *Service) append(ctx context.Context, msg Message) (Ack, error) {
	op := string(msg.Kind)
	if err := ValidateEvent(msg, s.cfg.MaxMessageBytes); err != nil {
		return s.reject(op, err)
	}
	start := time.Now()
	stored, dup, err := s.store.Append(ctx, msg)
	if err != nil {
		return s.reject(op, err)
	}
	s.m.appendTime.Observe(time.Since(start).Seconds())
	if dup {
		s.m.duplicates.Inc()
	} else {
		s.m.stored.WithLabelValues(op).Inc()
	}
	return Ack{ServerID: stored.ServerID, Seq: stored.Seq, ClientMsgID: stored.ClientMsgID, CreatedAt: stored.CreatedAt, Duplicate: dup}, nil
}

func (s *Service) reject(op string, err error) (Ack, error) {
	r := reason(err)
	s.m.rejected.WithLabelValues(r).Inc()
	if r == "error" {
		s.log.Error("chat store failure", "op", op, "err", err)
	}
	return Ack{}, fmt.Errorf("%s: %w", op, err)
}
