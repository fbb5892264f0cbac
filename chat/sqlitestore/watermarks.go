package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/chat"
)

// AdvanceWatermarks implements chat.WatermarkStore.
func (s *Store) AdvanceWatermarks(ctx context.Context, convID, identity string, w chat.Watermarks) (chat.Watermarks, error) {
	if w.Delivered < 0 || w.Read < 0 {
		return chat.Watermarks{}, fmt.Errorf("watermarks: %w: negative seq", chat.ErrInvalid)
	}
	var out chat.Watermarks
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var kind string
		var last int64
		err := tx.StmtContext(ctx, s.ws.convHead).QueryRowContext(ctx, convID).Scan(&kind, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotFound
		} else if err != nil {
			return err
		}
		if w.Delivered > last || w.Read > last {
			return fmt.Errorf("%w: mark beyond last seq %d", chat.ErrInvalid, last)
		}
		err = tx.StmtContext(ctx, s.ws.advance).QueryRowContext(ctx, w.Delivered, w.Read, w.Read, convID, identity).Scan(&out.Delivered, &out.Read)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotMember
		}
		return err
	})
	if err != nil {
		return chat.Watermarks{}, fmt.Errorf("watermarks of %s in %s: %w", identity, convID, err)
	}
	return out, nil
}

// Conversations implements chat.WatermarkStore. Unread counts stop at
// UnreadCap.
func (s *Store) Conversations(ctx context.Context, identity string) ([]chat.ConversationSummary, error) {
	rows, err := s.rs.list.QueryContext(ctx, identity)
	if err != nil {
		return nil, fmt.Errorf("conversations of %s: %w", identity, mapErr(err))
	}
	defer rows.Close()
	var out []chat.ConversationSummary
	for rows.Next() {
		cs, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("conversations of %s: %w", identity, err)
		}
		out = append(out, cs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversations of %s: %w", identity, mapErr(err))
	}
	return out, nil
}

// Summary implements chat.WatermarkStore. The unread count stops at
// UnreadCap.
func (s *Store) Summary(ctx context.Context, convID, identity string) (chat.ConversationSummary, error) {
	cs, err := scanSummary(s.rs.summary.QueryRowContext(ctx, convID, identity))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.ConversationSummary{}, fmt.Errorf("%s in %s: %w", identity, convID, chat.ErrNotMember)
	}
	if err != nil {
		return chat.ConversationSummary{}, fmt.Errorf("%s in %s: %w", identity, convID, mapErr(err))
	}
	return cs, nil
}

// scanSummary reads one row of readStmts.list or readStmts.summary.
func scanSummary(row interface{ Scan(dest ...any) error }) (chat.ConversationSummary, error) {
	var cs chat.ConversationSummary
	var kind, role string
	var created, lastAt int64
	c := &cs.Conversation
	if err := row.Scan(&c.ID, &kind, &c.Key, &c.Title, &c.LastSeq, &created, &lastAt,
		&role, &cs.Watermarks.Delivered, &cs.Watermarks.Read, &cs.Unread); err != nil {
		return chat.ConversationSummary{}, err
	}
	c.Kind, c.CreatedAt, cs.Role, cs.LastActivity = chat.ConversationKind(kind), fromMillis(created), chat.Role(role), fromMillis(lastAt)
	return cs, nil
}
