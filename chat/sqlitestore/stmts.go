package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const msgCols = `conv_id, seq, server_id, client_msg_id, sender, sender_name, kind, text, target_seq, created_at`

// visibleKinds are the event kinds that count as unread; edits and deletes
// change existing entries and do not.
const visibleKinds = `('text', 'call_missed', 'call_declined', 'system')`

// UnreadCap bounds the unread count per conversation: counting is a scan of
// the unread range, and a badge shows "999+" long before this anyway.
const UnreadCap = 1000

// writeStmts run on the single writer connection, inside transactions.
type writeStmts struct {
	dup, member, bump, insert, convHead *sql.Stmt
	insertConv, convByKey               *sql.Stmt
	upsertMember, addMemberIfAbsent     *sql.Stmt
	advance, rememberIdentity           *sql.Stmt
	all                                 []*sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	p := preparer{ctx: ctx, db: db}
	w.dup = p.do(`SELECT ` + msgCols + ` FROM messages WHERE conv_id = ? AND sender = ? AND client_msg_id = ?`)
	w.member = p.do(`SELECT role FROM members WHERE conv_id = ? AND identity = ?`)
	w.bump = p.do(`UPDATE conversations SET last_seq = last_seq + 1, last_at = ? WHERE id = ? RETURNING last_seq`)
	w.insert = p.do(`INSERT INTO messages (` + msgCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	w.convHead = p.do(`SELECT kind, last_seq FROM conversations WHERE id = ?`)
	w.insertConv = p.do(`INSERT INTO conversations (id, kind, key, title, created_at, last_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, key) DO NOTHING`)
	w.convByKey = p.do(`SELECT ` + convCols + ` FROM conversations WHERE kind = ? AND key = ?`)
	w.upsertMember = p.do(`INSERT INTO members (conv_id, identity, display_name, role, joined_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (conv_id, identity) DO UPDATE SET display_name = excluded.display_name, role = excluded.role`)
	w.addMemberIfAbsent = p.do(`INSERT INTO members (conv_id, identity, display_name, role, joined_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (conv_id, identity) DO NOTHING`)
	// MAX keeps marks monotonic in the database itself, so two racing
	// updates can never move a mark backwards; read raises delivered too.
	w.advance = p.do(`UPDATE members SET delivered_seq = MAX(delivered_seq, ?, ?), read_seq = MAX(read_seq, ?)
		WHERE conv_id = ? AND identity = ? RETURNING delivered_seq, read_seq`)
	w.rememberIdentity = p.do(`INSERT INTO identities (id, first_seen) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`)
	w.all = p.stmts
	return p.err
}

func (w *writeStmts) close() error { return closeAll(w.all) }

const convCols = `id, kind, COALESCE(key, ''), title, last_seq, created_at`

// readStmts run on the reader pool.
type readStmts struct {
	conv, member, rangeAfter, historyBefore, event *sql.Stmt
	list, summary, identityKnown                   *sql.Stmt
	all                                            []*sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	p := preparer{ctx: ctx, db: db}
	r.conv = p.do(`SELECT ` + convCols + ` FROM conversations WHERE id = ?`)
	r.member = p.do(`SELECT identity, display_name, role, delivered_seq, read_seq, joined_at FROM members WHERE conv_id = ? AND identity = ?`)
	r.rangeAfter = p.do(`SELECT ` + msgCols + ` FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
	r.historyBefore = p.do(`SELECT ` + msgCols + ` FROM messages WHERE conv_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`)
	r.event = p.do(`SELECT ` + msgCols + ` FROM messages WHERE conv_id = ? AND seq = ?`)
	// A member's conversation summaries (scanSummary's columns).
	summaries := fmt.Sprintf(`SELECT c.id, c.kind, COALESCE(c.key, ''), c.title, c.last_seq, c.created_at, c.last_at,
		m.role, m.delivered_seq, m.read_seq,
		(SELECT COUNT(*) FROM (SELECT 1 FROM messages x WHERE x.conv_id = c.id AND x.seq > m.read_seq
			AND x.sender <> m.identity AND x.kind IN %s LIMIT %d))
		FROM members m JOIN conversations c ON c.id = m.conv_id`, visibleKinds, UnreadCap)
	r.list = p.do(summaries + ` WHERE m.identity = ? ORDER BY c.last_at DESC, c.id`)
	r.summary = p.do(summaries + ` WHERE m.conv_id = ? AND m.identity = ?`)
	r.identityKnown = p.do(`SELECT EXISTS (SELECT 1 FROM identities WHERE id = ?1)
		OR EXISTS (SELECT 1 FROM members WHERE identity = ?1)`)
	r.all = p.stmts
	return p.err
}

func (r *readStmts) close() error { return closeAll(r.all) }

type preparer struct {
	ctx   context.Context
	db    *sql.DB
	stmts []*sql.Stmt
	err   error
}

func (p *preparer) do(q string) *sql.Stmt {
	if p.err != nil {
		return nil
	}
	st, err := p.db.PrepareContext(p.ctx, q)
	if err != nil {
		p.err = fmt.Errorf("%w in %q", err, q)
		return nil
	}
	p.stmts = append(p.stmts, st)
	return st
}

func closeAll(stmts []*sql.Stmt) error {
	var errs []error
	for _, st := range stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
