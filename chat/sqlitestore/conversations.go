package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/chat"
)

// EnsureRoom implements chat.ConversationStore.
func (s *Store) EnsureRoom(ctx context.Context, name string) (chat.Conversation, error) {
	if err := chat.ValidateRoomName(name); err != nil {
		return chat.Conversation{}, fmt.Errorf("room %q: %w", name, err)
	}
	var conv chat.Conversation
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		conv, err = s.ensureKeyed(ctx, tx, chat.KindRoom, name, name)
		return err
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("room %q: %w", name, err)
	}
	return conv, nil
}

// EnsureDirect implements chat.ConversationStore.
func (s *Store) EnsureDirect(ctx context.Context, a, b chat.Identity) (chat.Conversation, error) {
	for _, id := range []chat.Identity{a, b} {
		if err := chat.ValidateIdentity(id); err != nil {
			return chat.Conversation{}, fmt.Errorf("direct: %w", err)
		}
	}
	if a.ID == b.ID {
		return chat.Conversation{}, fmt.Errorf("direct: %w: both sides are %q", chat.ErrInvalid, a.ID)
	}
	var conv chat.Conversation
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		if conv, err = s.ensureKeyed(ctx, tx, chat.KindDirect, chat.DirectKey(a.ID, b.ID), ""); err != nil {
			return err
		}
		now := s.now()
		for _, id := range []chat.Identity{a, b} {
			if _, err := tx.StmtContext(ctx, s.ws.addMemberIfAbsent).ExecContext(ctx, conv.ID, id.ID, id.Name, string(chat.RoleMember), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("direct %s/%s: %w", a.ID, b.ID, err)
	}
	return conv, nil
}

// CreateGroup implements chat.ConversationStore.
func (s *Store) CreateGroup(ctx context.Context, title string, creator chat.Identity, members []chat.Identity) (chat.Conversation, error) {
	if err := chat.ValidateTitle(title); err != nil {
		return chat.Conversation{}, fmt.Errorf("group: %w", err)
	}
	for _, id := range append([]chat.Identity{creator}, members...) {
		if err := chat.ValidateIdentity(id); err != nil {
			return chat.Conversation{}, fmt.Errorf("group: %w", err)
		}
	}
	now := s.now()
	conv := chat.Conversation{ID: s.opts.NewID(), Kind: chat.KindGroup, Title: title, CreatedAt: fromMillis(now)}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, s.ws.insertConv).ExecContext(ctx, conv.ID, string(chat.KindGroup), nil, title, now, now); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.ws.upsertMember).ExecContext(ctx, conv.ID, creator.ID, creator.Name, string(chat.RoleAdmin), now); err != nil {
			return err
		}
		for _, m := range members {
			// IfAbsent: listing the creator again must not demote them.
			if _, err := tx.StmtContext(ctx, s.ws.addMemberIfAbsent).ExecContext(ctx, conv.ID, m.ID, m.Name, string(chat.RoleMember), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("group: %w", err)
	}
	return conv, nil
}

// ensureKeyed finds or creates the room or direct conversation with key.
func (s *Store) ensureKeyed(ctx context.Context, tx *sql.Tx, kind chat.ConversationKind, key, title string) (chat.Conversation, error) {
	now := s.now()
	if _, err := tx.StmtContext(ctx, s.ws.insertConv).ExecContext(ctx, s.opts.NewID(), string(kind), key, title, now, now); err != nil {
		return chat.Conversation{}, err
	}
	return scanConv(tx.StmtContext(ctx, s.ws.convByKey).QueryRowContext(ctx, string(kind), key))
}

// Conversation implements chat.ConversationStore.
func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	c, err := scanConv(s.rs.conv.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, mapErr(err))
	}
	return c, nil
}

// AddMember implements chat.ConversationStore. A direct conversation keeps
// exactly its two members: anyone else is refused with ErrForbidden.
func (s *Store) AddMember(ctx context.Context, m chat.Member) error {
	if err := chat.ValidateIdentity(m.Identity); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	if !m.Role.Valid() {
		return fmt.Errorf("add member: %w: role %q", chat.ErrInvalid, m.Role)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var kind string
		var last int64
		err := tx.StmtContext(ctx, s.ws.convHead).QueryRowContext(ctx, m.ConversationID).Scan(&kind, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotFound
		} else if err != nil {
			return err
		}
		if chat.ConversationKind(kind) == chat.KindDirect {
			var role string
			err := tx.StmtContext(ctx, s.ws.member).QueryRowContext(ctx, m.ConversationID, m.Identity.ID).Scan(&role)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: a direct conversation has exactly two members", chat.ErrForbidden)
			} else if err != nil {
				return err
			}
		}
		_, err = tx.StmtContext(ctx, s.ws.upsertMember).ExecContext(ctx, m.ConversationID, m.Identity.ID, m.Identity.Name, string(m.Role), s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("add member %s to %s: %w", m.Identity.ID, m.ConversationID, err)
	}
	return nil
}

// Member implements chat.ConversationStore.
func (s *Store) Member(ctx context.Context, convID, identity string) (chat.Member, error) {
	m := chat.Member{ConversationID: convID}
	var role string
	var joined int64
	err := s.rs.member.QueryRowContext(ctx, convID, identity).Scan(&m.Identity.ID, &m.Identity.Name, &role, &m.Delivered, &m.Read, &joined)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, fmt.Errorf("%s in %s: %w", identity, convID, chat.ErrNotMember)
	}
	if err != nil {
		return chat.Member{}, fmt.Errorf("%s in %s: %w", identity, convID, mapErr(err))
	}
	m.Role, m.JoinedAt = chat.Role(role), fromMillis(joined)
	return m, nil
}

// writeTx runs fn in a write transaction and commits it.
func (s *Store) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

func scanConv(r scanner) (chat.Conversation, error) {
	var c chat.Conversation
	var kind string
	var created int64
	err := r.Scan(&c.ID, &kind, &c.Key, &c.Title, &c.LastSeq, &created)
	c.Kind, c.CreatedAt = chat.ConversationKind(kind), fromMillis(created)
	return c, err
}
