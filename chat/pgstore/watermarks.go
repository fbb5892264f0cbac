package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/chat"
)

// UnreadCap bounds the unread count per conversation: counting is a scan of
// the unread range, and a badge shows "999+" long before this anyway.
const UnreadCap = 1000

// visibleKinds are the event kinds that count as unread; edits and deletes
// change existing entries and do not.
const visibleKinds = `('text', 'call_missed', 'call_declined', 'system')`

// AdvanceWatermarks implements chat.WatermarkStore. It needs no
// transaction: last_seq only grows, so a mark checked against it stays
// valid, and GREATEST in the UPDATE keeps racing advances monotonic.
func (s *Store) AdvanceWatermarks(ctx context.Context, convID, identity string, w chat.Watermarks) (chat.Watermarks, error) {
	if w.Delivered < 0 || w.Read < 0 {
		return chat.Watermarks{}, fmt.Errorf("watermarks: %w: negative seq", chat.ErrInvalid)
	}
	if err := s.check(); err != nil {
		return chat.Watermarks{}, fmt.Errorf("watermarks: %w", err)
	}
	out, err := s.advance(ctx, convID, identity, w)
	if err != nil {
		return chat.Watermarks{}, fmt.Errorf("watermarks of %s in %s: %w", identity, convID, s.mapErr(err))
	}
	return out, nil
}

func (s *Store) advance(ctx context.Context, convID, identity string, w chat.Watermarks) (chat.Watermarks, error) {
	var last int64
	err := s.pool.QueryRow(ctx, `SELECT last_seq FROM chat_conversations WHERE id = $1`, convID).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Watermarks{}, chat.ErrNotFound
	} else if err != nil {
		return chat.Watermarks{}, err
	}
	if w.Delivered > last || w.Read > last {
		return chat.Watermarks{}, fmt.Errorf("%w: mark beyond last seq %d", chat.ErrInvalid, last)
	}
	var out chat.Watermarks
	err = s.pool.QueryRow(ctx, `UPDATE chat_members
		SET delivered_seq = GREATEST(delivered_seq, $1, $2), read_seq = GREATEST(read_seq, $2)
		WHERE conv_id = $3 AND identity = $4 RETURNING delivered_seq, read_seq`,
		w.Delivered, w.Read, convID, identity).Scan(&out.Delivered, &out.Read)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Watermarks{}, chat.ErrNotMember
	}
	return out, err
}

// summarySelect reads a member's view of conversations: the columns
// scanSummary expects. Unread counts stop at UnreadCap.
//
//nolint:gochecknoglobals // a read-only query text built once
var summarySelect = fmt.Sprintf(`SELECT c.id, c.kind, COALESCE(c.key, ''), c.title, c.last_seq, c.created_at, c.last_at,
		m.role, m.delivered_seq, m.read_seq,
		(SELECT COUNT(*) FROM (SELECT 1 FROM chat_messages x WHERE x.conv_id = c.id AND x.seq > m.read_seq
			AND x.sender <> m.identity AND x.kind IN %s LIMIT %d) AS u)
		FROM chat_members m JOIN chat_conversations c ON c.id = m.conv_id`, visibleKinds, UnreadCap)

// Conversations implements chat.WatermarkStore. Unread counts stop at
// UnreadCap.
func (s *Store) Conversations(ctx context.Context, identity string) ([]chat.ConversationSummary, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("conversations of %s: %w", identity, err)
	}
	rows, err := s.pool.Query(ctx, summarySelect+` WHERE m.identity = $1 ORDER BY c.last_at DESC, c.id`, identity)
	if err != nil {
		return nil, fmt.Errorf("conversations of %s: %w", identity, s.mapErr(err))
	}
	defer rows.Close()
	var out []chat.ConversationSummary
	for rows.Next() {
		cs, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("conversations of %s: %w", identity, s.mapErr(err))
		}
		out = append(out, cs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations of %s: %w", identity, s.mapErr(err))
	}
	return out, nil
}

// Summary implements chat.WatermarkStore: one entry of Conversations.
func (s *Store) Summary(ctx context.Context, convID, identity string) (chat.ConversationSummary, error) {
	if err := s.check(); err != nil {
		return chat.ConversationSummary{}, fmt.Errorf("%s in %s: %w", identity, convID, err)
	}
	cs, err := scanSummary(s.pool.QueryRow(ctx, summarySelect+` WHERE m.conv_id = $1 AND m.identity = $2`, convID, identity))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.ConversationSummary{}, fmt.Errorf("%s in %s: %w", identity, convID, chat.ErrNotMember)
	}
	if err != nil {
		return chat.ConversationSummary{}, fmt.Errorf("%s in %s: %w", identity, convID, s.mapErr(err))
	}
	return cs, nil
}

// scanSummary reads one row of summarySelect.
func scanSummary(row pgx.Row) (chat.ConversationSummary, error) {
	var cs chat.ConversationSummary
	var kind, role string
	var lastAt time.Time
	c := &cs.Conversation
	if err := row.Scan(&c.ID, &kind, &c.Key, &c.Title, &c.LastSeq, &c.CreatedAt, &lastAt,
		&role, &cs.Watermarks.Delivered, &cs.Watermarks.Read, &cs.Unread); err != nil {
		return chat.ConversationSummary{}, err
	}
	c.Kind, c.Key, c.CreatedAt, cs.Role, cs.LastActivity = chat.ConversationKind(kind), keyFromDB(c.Key), c.CreatedAt.UTC(), chat.Role(role), lastAt.UTC()
	return cs, nil
}
