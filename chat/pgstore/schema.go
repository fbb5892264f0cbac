package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations[i] upgrades the schema from version i to i+1. Never edit a
// shipped entry: append a new one, because databases in the field already
// ran the old ones.
var migrations = []string{ //nolint:gochecknoglobals // read-only table
	// v1: the same three tables as the SQLite store. Constraint names are
	// fixed because Append tells a retry (chat_messages_dedup) from a seq
	// collision (chat_messages_pkey) by them.
	`
CREATE TABLE chat_conversations (
	id         text PRIMARY KEY,
	kind       text NOT NULL CHECK (kind IN ('room', 'direct', 'group')),
	-- room name or sorted identity pair; NULL for groups (NULLs never collide)
	key        text,
	title      text NOT NULL DEFAULT '',
	-- the per-conversation seq counter, bumped (and row-locked) by Append
	last_seq   bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	created_at timestamptz NOT NULL,
	last_at    timestamptz NOT NULL,
	CONSTRAINT chat_conversations_kind_key UNIQUE (kind, key)
);
CREATE TABLE chat_members (
	conv_id       text NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
	identity      text NOT NULL,
	display_name  text NOT NULL DEFAULT '',
	role          text NOT NULL CHECK (role IN ('member', 'admin')),
	delivered_seq bigint NOT NULL DEFAULT 0,
	read_seq      bigint NOT NULL DEFAULT 0,
	joined_at     timestamptz NOT NULL,
	PRIMARY KEY (conv_id, identity)
);
CREATE INDEX chat_members_by_identity ON chat_members (identity);
CREATE TABLE chat_messages (
	conv_id       text NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
	seq           bigint NOT NULL CHECK (seq > 0),
	server_id     text NOT NULL,
	client_msg_id text NOT NULL,
	sender        text NOT NULL,
	sender_name   text NOT NULL,
	kind          text NOT NULL,
	text          text NOT NULL,
	target_seq    bigint NOT NULL DEFAULT 0,
	created_at    timestamptz NOT NULL,
	-- no two events share a seq, even if the counter logic had a bug
	CONSTRAINT chat_messages_pkey PRIMARY KEY (conv_id, seq),
	-- the retry de-duplication key
	CONSTRAINT chat_messages_dedup UNIQUE (conv_id, sender, client_msg_id),
	CONSTRAINT chat_messages_server_id UNIQUE (server_id)
);
`,
	// v2: identities that have used the server (joined, or were issued a
	// token), so "who can be messaged" survives a restart and is the same
	// on every node.
	`
CREATE TABLE chat_identities (
	id         text PRIMARY KEY,
	first_seen timestamptz NOT NULL
);
`,
}

// migrate brings the schema to the newest version in one transaction. It
// runs under a transaction-scoped advisory lock keyed by the schema, so
// nodes starting together on an empty database do not race: one migrates,
// the others wait and find the work done. A schema written by a newer
// binary is refused rather than guessed at.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if schema == nil {
			return fmt.Errorf("migrate: no schema to create the chat tables in: none of the search_path's schemas exists")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('parley.chat.schema'), hashtext($1))`, *schema); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS chat_schema_version (version integer NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: create chat_schema_version: %w", err)
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM chat_schema_version`).Scan(&v); err != nil {
			return fmt.Errorf("migrate: read version: %w", err)
		}
		switch {
		case v > len(migrations):
			return fmt.Errorf("migrate: schema %q has chat schema version %d, newer than this binary's %d", *schema, v, len(migrations))
		case v == len(migrations):
			return nil
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrate to v%d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM chat_schema_version`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO chat_schema_version (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
}
