package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/rtmp"
)

// PGKeyTable is the PostgreSQL table of stream keys. Its ingest_ prefix
// keeps it apart from the chat store's chat_ tables in a shared database.
const PGKeyTable = "ingest_stream_keys"

// DefaultPGKeyConns is the pool size when PGKeyStoreOptions.MaxConns is
// 0: key lookups happen once per publish and revocation checks every
// ingest.key_check_interval, so a few connections are plenty.
const DefaultPGKeyConns = 4

// PGKeyStoreOptions tune OpenPGKeyStore; the zero value is usable.
type PGKeyStoreOptions struct {
	// MaxConns bounds the connection pool. Default DefaultPGKeyConns.
	MaxConns int
	// Schema, when set, is the search_path of every pooled connection:
	// the schema (which must exist) that holds the table. Otherwise the
	// URL's search_path, as for the chat store.
	Schema string
	// Now is the clock for CreatedAt/RevokedAt. Default time.Now.
	Now func() time.Time
}

// PGKeyStore keeps stream keys in PostgreSQL, for cluster mode: every
// node opens one on the chat's database (chat.postgres_url), so they all
// see the same keys. It behaves as the SQLite KeyStore (see StreamKeys)
// and satisfies rtmp.KeyStore.
type PGKeyStore struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// The identity column orders keys created in the same millisecond as
// SQLite's rowid does.
const pgKeySchema = `
CREATE TABLE IF NOT EXISTS ` + PGKeyTable + ` (
	seq        bigint GENERATED ALWAYS AS IDENTITY,
	id         text PRIMARY KEY,
	key_hash   text NOT NULL UNIQUE,
	room       text NOT NULL,
	name       text NOT NULL,
	identity   text NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz
)`

// OpenPGKeyStore connects to PostgreSQL at connString (a postgres:// URL
// or key=value string) and creates the table if it is missing. Errors
// name the server's host and database, never the connection string (it
// may hold a password).
func OpenPGKeyStore(ctx context.Context, connString string, opts PGKeyStoreOptions) (*PGKeyStore, error) {
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultPGKeyConns
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgconn's parse errors blank the password out.
		return nil, fmt.Errorf("open stream-key store on PostgreSQL: %w", err)
	}
	where := fmt.Sprintf("open stream-key store on PostgreSQL (host %s, database %s)", cfg.ConnConfig.Host, cfg.ConnConfig.Database)
	cfg.MaxConns = int32(min(opts.MaxConns, math.MaxInt32))
	cfg.MinConns = 0
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	cfg.AfterConnect = keepCommitsDurable
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := createPGKeyTable(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &PGKeyStore{pool: pool, now: opts.Now}, nil
}

// keepCommitsDurable turns synchronous_commit back on where the server,
// database or role set it off: an acknowledged revocation must survive a
// crash of the database server.
func keepCommitsDurable(ctx context.Context, c *pgx.Conn) error {
	var v string
	if err := c.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if v != "off" {
		return nil
	}
	if _, err := c.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		return fmt.Errorf("set synchronous_commit: %w", err)
	}
	return nil
}

// createPGKeyTable creates the table under an advisory lock keyed by the
// schema: CREATE TABLE IF NOT EXISTS is not safe against itself, and the
// nodes of a cluster may start together on an empty database.
func createPGKeyTable(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if schema == nil {
			return errors.New("schema: no schema to create " + PGKeyTable + " in: none of the search_path's schemas exists")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('parley.ingest.keys'), hashtext($1))`, *schema); err != nil {
			return fmt.Errorf("schema: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, pgKeySchema); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		return nil
	})
}

// Close closes the pool, waiting for queries in flight.
func (s *PGKeyStore) Close() error {
	s.pool.Close()
	return nil
}

// Create makes a new stream key bound to r. The returned Key's Secret is
// the only copy of the key.
func (s *PGKeyStore) Create(ctx context.Context, r KeyRequest) (Key, error) {
	k, err := newKey(r, s.now())
	if err != nil {
		return Key{}, err
	}
	_, err = s.pool.Exec(ctx,
		`INSERT INTO `+PGKeyTable+` (id, key_hash, room, name, identity, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, hashKey(k.Secret), k.Room, k.Name, k.Identity, k.CreatedAt)
	if err != nil {
		return Key{}, fmt.Errorf("create stream key for room %q: %w", k.Room, err)
	}
	return k, nil
}

// List returns every key, revoked ones included, oldest first, without
// secrets.
func (s *PGKeyStore) List(ctx context.Context) ([]Key, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT id, room, name, identity, created_at, revoked_at FROM `+PGKeyTable+` ORDER BY created_at, seq`)
	if err != nil {
		return nil, fmt.Errorf("list stream keys: %w", err)
	}
	keys := []Key{}
	for rows.Next() {
		k, err := scanPGKey(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list stream keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list stream keys: %w", err)
	}
	return keys, nil
}

func scanPGKey(row pgx.Row) (Key, error) {
	var k Key
	var revoked *time.Time
	if err := row.Scan(&k.ID, &k.Room, &k.Name, &k.Identity, &k.CreatedAt, &revoked); err != nil {
		return Key{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked != nil {
		t := revoked.UTC()
		k.RevokedAt = &t
	}
	return k, nil
}

// Revoke marks the key with this id revoked (see KeyStore.Revoke): every
// node refuses new publishes with it at once and ends its live streams
// within ingest.key_check_interval. Revoking twice keeps the first time;
// an unknown id is ErrKeyNotFound.
func (s *PGKeyStore) Revoke(ctx context.Context, id string) (Key, error) {
	if !pgText(id) {
		return Key{}, fmt.Errorf("revoke stream key %s: %w", id, ErrKeyNotFound)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	k, err := scanPGKey(s.pool.QueryRow(ctx,
		`UPDATE `+PGKeyTable+` SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2
		 RETURNING id, room, name, identity, created_at, revoked_at`, now, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("revoke stream key %s: %w", id, ErrKeyNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("revoke stream key %s: %w", id, err)
	}
	return k, nil
}

// Lookup resolves a stream key (rtmp.KeyStore); as with the SQLite store
// only the key's hash reaches the database and errors never contain the
// key.
func (s *PGKeyStore) Lookup(ctx context.Context, key string) (rtmp.Binding, error) {
	if key == "" || len(key) > 256 {
		return rtmp.Binding{}, rtmp.ErrUnknownKey
	}
	var b rtmp.Binding
	var revoked bool
	err := s.pool.QueryRow(ctx,
		`SELECT id, room, name, identity, revoked_at IS NOT NULL FROM `+PGKeyTable+` WHERE key_hash = $1`, hashKey(key)).
		Scan(&b.KeyID, &b.Room, &b.Name, &b.Identity, &revoked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return rtmp.Binding{}, rtmp.ErrUnknownKey
	case err != nil:
		return rtmp.Binding{}, fmt.Errorf("look up stream key: %w", err)
	case revoked:
		return rtmp.Binding{}, fmt.Errorf("stream key %s: %w", b.KeyID, rtmp.ErrRevoked)
	}
	return b, nil
}

// Revoked reports whether the key with this id is revoked (or gone); the
// Service asks it about its live streams, so a revocation made on any
// node ends them.
func (s *PGKeyStore) Revoked(ctx context.Context, id string) (bool, error) {
	if !pgText(id) {
		return true, nil // no such key can exist
	}
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM `+PGKeyTable+` WHERE id = $1`, id).Scan(&revoked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("check stream key %s: %w", id, err)
	}
	return revoked, nil
}

// pgText reports whether PostgreSQL can take s as text: a NUL or invalid
// UTF-8 (an id from a URL path) is an error there, not a missing row as
// in SQLite, and the two stores must answer alike.
func pgText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
