package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleyhq/parley/chat"
)

const msgCols = `conv_id, seq, server_id, client_msg_id, sender, sender_name, kind, text, target_seq, created_at`

// errDedupRace: the insert hit chat_messages_dedup, so a copy of this
// client message committed while this one waited for the counter's lock.
var errDedupRace = errors.New("client message id stored concurrently")

// Append implements chat.MessageStore, in the steps chat.Store describes:
// dedup lookup, membership check, counter bump (UPDATE ... RETURNING,
// which holds the conversation row's lock until commit), insert, commit.
// The transaction is READ COMMITTED whatever the server's default, since
// the argument in chat.Store relies on it. A retry that raced its original
// waits on the row lock, bumps after the original committed, and fails
// the dedup constraint on insert; it is rolled back (its bump with it) and
// answered with the original, re-read in a fresh statement.
func (s *Store) Append(ctx context.Context, msg chat.Message) (chat.Message, bool, error) {
	if err := s.checkAppend(&msg); err != nil {
		return chat.Message{}, false, err
	}
	stored, dup, err := s.appendTx(ctx, msg)
	if errors.Is(err, errDedupRace) {
		s.dedupRaces.Add(1)
		orig, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+msgCols+` FROM chat_messages
			WHERE conv_id = $1 AND sender = $2 AND client_msg_id = $3`, msg.ConversationID, msg.Sender.ID, msg.ClientMsgID))
		if err != nil {
			return chat.Message{}, false, fmt.Errorf("append: re-read after dedup conflict: %w", s.mapErr(err))
		}
		return sameContent(orig, msg)
	}
	return stored, dup, err
}

// checkAppend validates and normalises an event before it reaches the
// database, so bad input never costs a lock.
func (s *Store) checkAppend(msg *chat.Message) error {
	id, err := chat.ParseClientMsgID(msg.ClientMsgID)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	msg.ClientMsgID = id
	if err := chat.ValidateEvent(*msg, s.opts.MaxMessageBytes); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

func (s *Store) appendTx(ctx context.Context, msg chat.Message) (chat.Message, bool, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append: begin: %w", s.mapErr(err))
	}
	defer rollback(ctx, tx)

	// 1. A retry of a message stored earlier: answer with the original.
	orig, err := scanMessage(tx.QueryRow(ctx, `SELECT `+msgCols+` FROM chat_messages
		WHERE conv_id = $1 AND sender = $2 AND client_msg_id = $3`, msg.ConversationID, msg.Sender.ID, msg.ClientMsgID))
	switch {
	case err == nil:
		return sameContent(orig, msg)
	case !errors.Is(err, pgx.ErrNoRows):
		return chat.Message{}, false, fmt.Errorf("append: dedup lookup: %w", s.mapErr(err))
	}
	// 2. Membership, before any lock is taken.
	if msg.Sender.ID != "" {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM chat_members WHERE conv_id = $1 AND identity = $2`, msg.ConversationID, msg.Sender.ID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			err = tx.QueryRow(ctx, `SELECT 1 FROM chat_conversations WHERE id = $1`, msg.ConversationID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return chat.Message{}, false, fmt.Errorf("append: conversation %s: %w", msg.ConversationID, chat.ErrNotFound)
			} else if err == nil {
				return chat.Message{}, false, fmt.Errorf("append: %s in %s: %w", msg.Sender.ID, msg.ConversationID, chat.ErrNotMember)
			}
		}
		if err != nil {
			return chat.Message{}, false, fmt.Errorf("append: %w", s.mapErr(err))
		}
	}
	// 3. The next seq, under the conversation row's lock until commit.
	now := s.now()
	var seq int64
	err = tx.QueryRow(ctx, `UPDATE chat_conversations SET last_seq = last_seq + 1, last_at = $1 WHERE id = $2 RETURNING last_seq`,
		now, msg.ConversationID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, false, fmt.Errorf("append: conversation %s: %w", msg.ConversationID, chat.ErrNotFound)
	} else if err != nil {
		return chat.Message{}, false, fmt.Errorf("append: allocate seq: %w", s.mapErr(err))
	}
	if msg.Kind.Targets() && msg.TargetSeq >= seq {
		return chat.Message{}, false, fmt.Errorf("append: %s target seq %d: %w", msg.Kind, msg.TargetSeq, chat.ErrNotFound)
	}
	// 4. The event, under both UNIQUE constraints.
	msg.Seq, msg.ServerID, msg.CreatedAt = seq, s.opts.NewID(), now
	_, err = tx.Exec(ctx, `INSERT INTO chat_messages (`+msgCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		msg.ConversationID, msg.Seq, msg.ServerID, msg.ClientMsgID, msg.Sender.ID, msg.Sender.Name,
		string(msg.Kind), msg.Text, msg.TargetSeq, now)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "chat_messages_dedup" {
		return chat.Message{}, false, errDedupRace
	}
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("append: insert seq %d: %w", seq, s.mapErr(err))
	}
	// 5. Durable, then acknowledged.
	if err := tx.Commit(ctx); err != nil {
		return chat.Message{}, false, fmt.Errorf("append: commit (it may be stored; retry with the same client message id): %w", s.mapErr(err))
	}
	return msg, false, nil
}

// sameContent answers a retry with its original, or ErrConflict when the
// client reused the id for something else.
func sameContent(orig, msg chat.Message) (chat.Message, bool, error) {
	if orig.Kind != msg.Kind || orig.Text != msg.Text || orig.TargetSeq != msg.TargetSeq {
		return chat.Message{}, false, fmt.Errorf("append: %w: client message id %s was already used for different content", chat.ErrConflict, msg.ClientMsgID)
	}
	return orig, true, nil
}

// rollback ends tx if it is still open. It runs even when ctx is done
// (then a failed rollback closes the connection, which rolls back too).
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(rctx) // ErrTxClosed after commit; nothing to report
}

// Range implements chat.MessageStore.
func (s *Store) Range(ctx context.Context, convID string, afterSeq int64, limit int) ([]chat.Message, error) {
	if limit <= 0 || afterSeq < 0 {
		return nil, fmt.Errorf("range: %w: after %d limit %d", chat.ErrInvalid, afterSeq, limit)
	}
	return s.queryMessages(ctx, `SELECT `+msgCols+` FROM chat_messages WHERE conv_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		convID, afterSeq, limit)
}

// History implements chat.MessageStore.
func (s *Store) History(ctx context.Context, convID string, beforeSeq int64, limit int) ([]chat.Message, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("history: %w: limit %d", chat.ErrInvalid, limit)
	}
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	return s.queryMessages(ctx, `SELECT `+msgCols+` FROM chat_messages WHERE conv_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		convID, beforeSeq, limit)
}

// Event implements chat.MessageStore.
func (s *Store) Event(ctx context.Context, convID string, seq int64) (chat.Message, error) {
	if err := s.check(); err != nil {
		return chat.Message{}, fmt.Errorf("event %s#%d: %w", convID, seq, err)
	}
	m, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+msgCols+` FROM chat_messages WHERE conv_id = $1 AND seq = $2`, convID, seq))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, fmt.Errorf("event %s#%d: %w", convID, seq, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("event %s#%d: %w", convID, seq, s.mapErr(err))
	}
	return m, nil
}

func (s *Store) queryMessages(ctx context.Context, sql, convID string, seq int64, limit int) ([]chat.Message, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("messages of %s: %w", convID, err)
	}
	rows, err := s.pool.Query(ctx, sql, convID, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", convID, s.mapErr(err))
	}
	defer rows.Close()
	out := make([]chat.Message, 0, min(limit, 256))
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("messages of %s: %w", convID, s.mapErr(err))
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages of %s: %w", convID, s.mapErr(err))
	}
	return out, nil
}

func scanMessage(r pgx.Row) (chat.Message, error) {
	var m chat.Message
	var kind string
	err := r.Scan(&m.ConversationID, &m.Seq, &m.ServerID, &m.ClientMsgID, &m.Sender.ID, &m.Sender.Name,
		&kind, &m.Text, &m.TargetSeq, &m.CreatedAt)
	m.Kind, m.CreatedAt = chat.EventKind(kind), m.CreatedAt.UTC()
	return m, err
}
