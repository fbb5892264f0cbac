package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleyhq/parley/chat"
)

const convCols = `id, kind, COALESCE(key, ''), title, last_seq, created_at`

// PostgreSQL text cannot hold NUL, the separator of chat.DirectKey, so the
// key is stored with US (0x1f) in its place. Ids and room names never hold
// a control character, so the mapping is one-to-one.
const (
	keySep   = "\x00"
	keySepDB = "\x1f"
)

func keyToDB(key string) string   { return strings.ReplaceAll(key, keySep, keySepDB) }
func keyFromDB(key string) string { return strings.ReplaceAll(key, keySepDB, keySep) }

// EnsureRoom implements chat.ConversationStore.
func (s *Store) EnsureRoom(ctx context.Context, name string) (chat.Conversation, error) {
	if err := chat.ValidateRoomName(name); err != nil {
		return chat.Conversation{}, fmt.Errorf("room %q: %w", name, err)
	}
	if err := s.check(); err != nil {
		return chat.Conversation{}, fmt.Errorf("room %q: %w", name, err)
	}
	conv, err := s.ensureKeyed(ctx, s.pool, chat.KindRoom, name, name)
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("room %q: %w", name, s.mapErr(err))
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
	if err := s.check(); err != nil {
		return chat.Conversation{}, fmt.Errorf("direct: %w", err)
	}
	var conv chat.Conversation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if conv, err = s.ensureKeyed(ctx, tx, chat.KindDirect, chat.DirectKey(a.ID, b.ID), ""); err != nil {
			return err
		}
		now := s.now()
		for _, id := range []chat.Identity{a, b} {
			if _, err := tx.Exec(ctx, addMemberIfAbsent, conv.ID, id.ID, id.Name, string(chat.RoleMember), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("direct %s/%s: %w", a.ID, b.ID, s.mapErr(err))
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
	if err := s.check(); err != nil {
		return chat.Conversation{}, fmt.Errorf("group: %w", err)
	}
	now := s.now()
	conv := chat.Conversation{ID: s.opts.NewID(), Kind: chat.KindGroup, Title: title, CreatedAt: now}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertConv, conv.ID, string(chat.KindGroup), nil, title, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, upsertMember, conv.ID, creator.ID, creator.Name, string(chat.RoleAdmin), now); err != nil {
			return err
		}
		for _, m := range members {
			// IfAbsent: listing the creator again must not demote them.
			if _, err := tx.Exec(ctx, addMemberIfAbsent, conv.ID, m.ID, m.Name, string(chat.RoleMember), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("group: %w", s.mapErr(err))
	}
	return conv, nil
}

const (
	insertConv = `INSERT INTO chat_conversations (id, kind, key, title, created_at, last_at) VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT ON CONSTRAINT chat_conversations_kind_key DO NOTHING`
	upsertMember = `INSERT INTO chat_members (conv_id, identity, display_name, role, joined_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (conv_id, identity) DO UPDATE SET display_name = excluded.display_name, role = excluded.role`
	addMemberIfAbsent = `INSERT INTO chat_members (conv_id, identity, display_name, role, joined_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (conv_id, identity) DO NOTHING`
)

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ensureKeyed finds or creates the room or direct conversation with key.
// The insert does nothing when the key exists (waiting for a concurrent
// inserter to commit or roll back first); the select that follows is a
// new statement, so under READ COMMITTED it sees the row either way.
func (s *Store) ensureKeyed(ctx context.Context, q querier, kind chat.ConversationKind, key, title string) (chat.Conversation, error) {
	if _, err := q.Exec(ctx, insertConv, s.opts.NewID(), string(kind), keyToDB(key), title, s.now()); err != nil {
		return chat.Conversation{}, err
	}
	return scanConv(q.QueryRow(ctx, `SELECT `+convCols+` FROM chat_conversations WHERE kind = $1 AND key = $2`, string(kind), keyToDB(key)))
}

// Conversation implements chat.ConversationStore.
func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	if err := s.check(); err != nil {
		return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, err)
	}
	c, err := scanConv(s.pool.QueryRow(ctx, `SELECT `+convCols+` FROM chat_conversations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Conversation{}, fmt.Errorf("conversation %s: %w", id, s.mapErr(err))
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
	if err := s.check(); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var kind string
		err := tx.QueryRow(ctx, `SELECT kind FROM chat_conversations WHERE id = $1`, m.ConversationID).Scan(&kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.ErrNotFound
		} else if err != nil {
			return err
		}
		if chat.ConversationKind(kind) == chat.KindDirect {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM chat_members WHERE conv_id = $1 AND identity = $2`, m.ConversationID, m.Identity.ID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: a direct conversation has exactly two members", chat.ErrForbidden)
			} else if err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, upsertMember, m.ConversationID, m.Identity.ID, m.Identity.Name, string(m.Role), s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("add member %s to %s: %w", m.Identity.ID, m.ConversationID, s.mapErr(err))
	}
	return nil
}

// Member implements chat.ConversationStore.
func (s *Store) Member(ctx context.Context, convID, identity string) (chat.Member, error) {
	if err := s.check(); err != nil {
		return chat.Member{}, fmt.Errorf("%s in %s: %w", identity, convID, err)
	}
	m := chat.Member{ConversationID: convID}
	var role string
	var joined time.Time
	err := s.pool.QueryRow(ctx, `SELECT identity, display_name, role, delivered_seq, read_seq, joined_at
		FROM chat_members WHERE conv_id = $1 AND identity = $2`, convID, identity).
		Scan(&m.Identity.ID, &m.Identity.Name, &role, &m.Delivered, &m.Read, &joined)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Member{}, fmt.Errorf("%s in %s: %w", identity, convID, chat.ErrNotMember)
	}
	if err != nil {
		return chat.Member{}, fmt.Errorf("%s in %s: %w", identity, convID, s.mapErr(err))
	}
	m.Role, m.JoinedAt = chat.Role(role), joined.UTC()
	return m, nil
}

func scanConv(r pgx.Row) (chat.Conversation, error) {
	var c chat.Conversation
	var kind string
	err := r.Scan(&c.ID, &kind, &c.Key, &c.Title, &c.LastSeq, &c.CreatedAt)
	c.Kind, c.Key, c.CreatedAt = chat.ConversationKind(kind), keyFromDB(c.Key), c.CreatedAt.UTC()
	return c, err
}
