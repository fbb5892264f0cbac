package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] upgrades the schema from version i to i+1. Never edit a
// shipped entry: append a new one, because databases in the field already
// ran the old ones.
var migrations = []string{ //nolint:gochecknoglobals // read-only table
	// v1: conversations with their seq counter, members with watermarks,
	// the event log.
	`
CREATE TABLE conversations (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('room', 'direct', 'group')),
	-- room name or sorted identity pair; NULL for groups (NULLs never collide)
	key        TEXT,
	title      TEXT NOT NULL DEFAULT '',
	-- the per-conversation seq counter, bumped in the append transaction
	last_seq   INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	created_at INTEGER NOT NULL,
	last_at    INTEGER NOT NULL,
	UNIQUE (kind, key)
);
CREATE TABLE members (
	conv_id       TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	identity      TEXT NOT NULL,
	display_name  TEXT NOT NULL DEFAULT '',
	role          TEXT NOT NULL CHECK (role IN ('member', 'admin')),
	delivered_seq INTEGER NOT NULL DEFAULT 0,
	read_seq      INTEGER NOT NULL DEFAULT 0,
	joined_at     INTEGER NOT NULL,
	PRIMARY KEY (conv_id, identity)
) WITHOUT ROWID;
CREATE INDEX members_by_identity ON members (identity);
CREATE TABLE messages (
	conv_id       TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq           INTEGER NOT NULL CHECK (seq > 0),
	server_id     TEXT NOT NULL UNIQUE,
	client_msg_id TEXT NOT NULL,
	sender        TEXT NOT NULL,
	sender_name   TEXT NOT NULL,
	kind          TEXT NOT NULL,
	text          TEXT NOT NULL,
	target_seq    INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	-- no two events share a seq, even if the counter logic had a bug
	UNIQUE (conv_id, seq),
	-- the retry de-duplication key
	UNIQUE (conv_id, sender, client_msg_id)
);
`,
	// v2: identities that have used the server (joined, or were issued a
	// token), so "who can be messaged" survives a restart.
	`
CREATE TABLE identities (
	id         TEXT PRIMARY KEY,
	first_seen INTEGER NOT NULL
) WITHOUT ROWID;
`,
}

// migrate brings the database to the newest schema version inside one
// transaction per step, and refuses a database written by a newer binary
// rather than guess at its layout.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for {
		done, err := migrateStep(ctx, db)
		if err != nil || done {
			return err
		}
	}
}

func migrateStep(ctx context.Context, db *sql.DB) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: read version: %w", err)
	}
	switch {
	case v > len(migrations):
		return false, fmt.Errorf("migrate: database schema version %d is newer than this binary's %d", v, len(migrations))
	case v == len(migrations):
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("migrate to v%d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return false, fmt.Errorf("migrate to v%d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v+1); err != nil {
		return false, fmt.Errorf("migrate to v%d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to v%d: commit: %w", v+1, err)
	}
	return false, nil
}
