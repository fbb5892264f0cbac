package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/parleyhq/parley/chat"
)

// Append implements chat.MessageStore. See chat.Store for the seq protocol;
// here SQLite's single writer serialises all appends, and the counter row
// update plus insert run in one IMMEDIATE transaction that is committed
// (WAL fsynced, synchronous=FULL) before Append returns.
func (s *Store) Append(ctx context.Context, msg chat.Message) (chat.Message, bool, error) {
	if err := s.checkAppend(&msg); err != nil {
		return chat.Message{}, false, err
	}
	if s.batch != nil {
		return s.batch.append(ctx, msg)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append: begin: %w", mapErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	stored, dup, err := s.appendTx(ctx, tx, msg)
	if err != nil {
		return chat.Message{}, false, err
	}
	if dup {
		return stored, true, nil // nothing written; the rollback is free
	}
	if err := tx.Commit(); err != nil {
		return chat.Message{}, false, fmt.Errorf("append: commit: %w", mapErr(err))
	}
	return stored, false, nil
}

// checkAppend validates and normalises an event before it enters a
// transaction, so bad input never costs a lock.
func (s *Store) checkAppend(msg *chat.Message) error {
	id, err := chat.ParseClientMsgID(msg.ClientMsgID)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	msg.ClientMsgID = id
	if err := chat.ValidateEvent(*msg, s.opts.MaxMessageBytes); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

// appendTx does the dedup check, membership check, seq bump and insert on
// tx. It writes nothing when it returns an error or a duplicate.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, msg chat.Message) (chat.Message, bool, error) {
	orig, err := scanMessage(tx.StmtContext(ctx, s.ws.dup).QueryRowContext(ctx, msg.ConversationID, msg.Sender.ID, msg.ClientMsgID))
	switch {
	case err == nil:
		if orig.Kind != msg.Kind || orig.Text != msg.Text || orig.TargetSeq != msg.TargetSeq {
			return chat.Message{}, false, fmt.Errorf("append: %w: client message id %s was already used for different content", chat.ErrConflict, msg.ClientMsgID)
		}
		return orig, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return chat.Message{}, false, fmt.Errorf("append: dedup lookup: %w", mapErr(err))
	}
	var kind string
	var last int64
	err = tx.StmtContext(ctx, s.ws.convHead).QueryRowContext(ctx, msg.ConversationID).Scan(&kind, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, false, fmt.Errorf("append: conversation %s: %w", msg.ConversationID, chat.ErrNotFound)
	} else if err != nil {
		return chat.Message{}, false, fmt.Errorf("append: %w", mapErr(err))
	}
	if msg.Sender.ID != "" {
		var role string
		err = tx.StmtContext(ctx, s.ws.member).QueryRowContext(ctx, msg.ConversationID, msg.Sender.ID).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.Message{}, false, fmt.Errorf("append: %s in %s: %w", msg.Sender.ID, msg.ConversationID, chat.ErrNotMember)
		} else if err != nil {
			return chat.Message{}, false, fmt.Errorf("append: %w", mapErr(err))
		}
	}
	if msg.Kind.Targets() && msg.TargetSeq > last {
		return chat.Message{}, false, fmt.Errorf("append: %s target seq %d: %w", msg.Kind, msg.TargetSeq, chat.ErrNotFound)
	}
	now := s.now()
	var seq int64
	if err := tx.StmtContext(ctx, s.ws.bump).QueryRowContext(ctx, now, msg.ConversationID).Scan(&seq); err != nil {
		return chat.Message{}, false, fmt.Errorf("append: allocate seq: %w", mapErr(err))
	}
	msg.Seq, msg.ServerID, msg.CreatedAt = seq, s.opts.NewID(), fromMillis(now)
	if _, err := tx.StmtContext(ctx, s.ws.insert).ExecContext(ctx,
		msg.ConversationID, msg.Seq, msg.ServerID, msg.ClientMsgID, msg.Sender.ID, msg.Sender.Name,
		string(msg.Kind), msg.Text, msg.TargetSeq, now); err != nil {
		return chat.Message{}, false, fmt.Errorf("append: insert seq %d: %w", seq, mapErr(err))
	}
	return msg, false, nil
}

// Range implements chat.MessageStore.
func (s *Store) Range(ctx context.Context, convID string, afterSeq int64, limit int) ([]chat.Message, error) {
	if limit <= 0 || afterSeq < 0 {
		return nil, fmt.Errorf("range: %w: after %d limit %d", chat.ErrInvalid, afterSeq, limit)
	}
	return s.queryMessages(ctx, s.rs.rangeAfter, convID, afterSeq, limit)
}

// History implements chat.MessageStore.
func (s *Store) History(ctx context.Context, convID string, beforeSeq int64, limit int) ([]chat.Message, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("history: %w: limit %d", chat.ErrInvalid, limit)
	}
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	return s.queryMessages(ctx, s.rs.historyBefore, convID, beforeSeq, limit)
}

// Event implements chat.MessageStore.
func (s *Store) Event(ctx context.Context, convID string, seq int64) (chat.Message, error) {
	m, err := scanMessage(s.rs.event.QueryRowContext(ctx, convID, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, fmt.Errorf("event %s#%d: %w", convID, seq, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("event %s#%d: %w", convID, seq, mapErr(err))
	}
	return m, nil
}

func (s *Store) queryMessages(ctx context.Context, st *sql.Stmt, convID string, seq int64, limit int) ([]chat.Message, error) {
	rows, err := st.QueryContext(ctx, convID, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", convID, mapErr(err))
	}
	defer rows.Close()
	out := make([]chat.Message, 0, min(limit, 256))
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("messages of %s: %w", convID, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages of %s: %w", convID, mapErr(err))
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanMessage(r scanner) (chat.Message, error) {
	var m chat.Message
	var kind string
	var created int64
	err := r.Scan(&m.ConversationID, &m.Seq, &m.ServerID, &m.ClientMsgID, &m.Sender.ID, &m.Sender.Name,
		&kind, &m.Text, &m.TargetSeq, &created)
	m.Kind, m.CreatedAt = chat.EventKind(kind), fromMillis(created)
	return m, err
}
