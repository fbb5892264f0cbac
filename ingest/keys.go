package ingest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/rtmp"
)

// KeyStoreFile is the stream-key database's file name inside Parley's
// data directory.
const KeyStoreFile = "ingress.db"

// KeyStorePath returns the key database path for a data directory.
func KeyStorePath(dataDir string) string { return filepath.Join(dataDir, KeyStoreFile) }

// Errors the KeyStore returns besides rtmp.ErrUnknownKey and rtmp.ErrRevoked.
var (
	ErrKeyNotFound = errors.New("ingest: no such stream key")
	ErrInvalid     = errors.New("ingest: invalid request")
)

// Limits on what a key binds to; the room and identity limits match what
// signaling accepts in tokens, the name is a display name.
const (
	maxRoomLen     = 128
	maxNameLen     = 128
	maxIdentityLen = 128
)

// KeyRequest is what a new stream key binds to. Identity may be empty:
// the stream then joins as "ingress-<name>" (name lower-cased, spaces and
// other separators turned into '-').
type KeyRequest struct {
	Room     string `json:"room"`
	Name     string `json:"name"`
	Identity string `json:"identity,omitempty"`
}

// Key is a stored stream key. Secret is set only in the value Create
// returns: the store keeps a SHA-256 of it and can never show it again.
type Key struct {
	ID        string     `json:"id"`
	Secret    string     `json:"key,omitempty"`
	Room      string     `json:"room"`
	Name      string     `json:"name"`
	Identity  string     `json:"identity"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// KeyStoreOptions tune OpenKeyStore; the zero value is usable.
type KeyStoreOptions struct {
	// BusyTimeout is how long a statement waits while another process
	// (the `parley ingress` CLI next to a running server) holds the write
	// lock. Default 5s.
	BusyTimeout time.Duration
	// Now is the clock for CreatedAt/RevokedAt. Default time.Now.
	Now func() time.Time
}

// KeyStore keeps stream keys in SQLite (WAL mode, so the server reads
// while the CLI writes). It satisfies rtmp.KeyStore.
type KeyStore struct {
	db  *sql.DB
	now func() time.Time
}

var _ rtmp.KeyStore = (*KeyStore)(nil)

const keySchema = `
CREATE TABLE IF NOT EXISTS ingress_keys (
	id         TEXT PRIMARY KEY,
	key_hash   TEXT NOT NULL UNIQUE,
	room       TEXT NOT NULL,
	name       TEXT NOT NULL,
	identity   TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);`

// OpenKeyStore opens (creating if needed) the key database at path. The
// parent directory is created with mode 0700 and the file gets mode 0600:
// it holds hashes, not keys, but its bindings are still private.
func OpenKeyStore(ctx context.Context, path string, opts KeyStoreOptions) (*KeyStore, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open key store %q: %w: path must be non-empty without '?' or '#'", path, ErrInvalid)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	// busy_timeout on every connection: a second process writing at the
	// same moment makes us wait instead of failing with SQLITE_BUSY.
	// _txlock=immediate takes the write lock at BEGIN, so a transaction
	// never fails half-way on lock upgrade.
	dsn := fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate",
		path, opts.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &KeyStore{db: db, now: opts.Now}
	if err := s.init(ctx, path); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	return s, nil
}

func (s *KeyStore) init(ctx context.Context, path string) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal (is the file on a filesystem without shared memory?)", mode)
	}
	if _, err := s.db.ExecContext(ctx, keySchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *KeyStore) Close() error { return s.db.Close() }

// Create makes a new stream key bound to r. The returned Key's Secret is
// the only copy of the key.
func (s *KeyStore) Create(ctx context.Context, r KeyRequest) (Key, error) {
	k, err := newKey(r, s.now())
	if err != nil {
		return Key{}, err
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO ingress_keys (id, key_hash, room, name, identity, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, hashKey(k.Secret), k.Room, k.Name, k.Identity, k.CreatedAt.UnixMilli())
	if err != nil {
		return Key{}, fmt.Errorf("create stream key for room %q: %w", k.Room, err)
	}
	return k, nil
}

// newKey makes the key Create stores for r, made at now: a new id and
// secret, the request normalised, the time in milliseconds (what both
// stores keep, so they give the same times back).
func newKey(r KeyRequest, now time.Time) (Key, error) {
	r, err := normalizeKeyRequest(r)
	if err != nil {
		return Key{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return Key{}, err
	}
	return Key{ID: ids.New("IK_"), Secret: secret, Room: r.Room, Name: r.Name, Identity: r.Identity,
		CreatedAt: now.UTC().Truncate(time.Millisecond)}, nil
}

// List returns every key, revoked ones included, oldest first, without
// secrets.
func (s *KeyStore) List(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, room, name, identity, created_at, revoked_at FROM ingress_keys ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list stream keys: %w", err)
	}
	defer rows.Close()
	keys := []Key{}
	for rows.Next() {
		var k Key
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Room, &k.Name, &k.Identity, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list stream keys: %w", err)
		}
		k.CreatedAt = time.UnixMilli(created).UTC()
		if revoked.Valid {
			t := time.UnixMilli(revoked.Int64).UTC()
			k.RevokedAt = &t
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list stream keys: %w", err)
	}
	return keys, nil
}

// Revoke marks the key with this id revoked: new publishes with it are
// refused with rtmp.ErrRevoked, and the Service ends a publish already
// live within ingest.key_check_interval. Revoking twice is not an error;
// an unknown id is ErrKeyNotFound.
func (s *KeyStore) Revoke(ctx context.Context, id string) (Key, error) {
	now := s.now().UTC().Truncate(time.Millisecond).UnixMilli()
	if _, err := s.db.ExecContext(ctx,
		`UPDATE ingress_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now, id); err != nil {
		return Key{}, fmt.Errorf("revoke stream key %s: %w", id, err)
	}
	var k Key
	var created int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, room, name, identity, created_at, revoked_at FROM ingress_keys WHERE id = ?`, id).
		Scan(&k.ID, &k.Room, &k.Name, &k.Identity, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("revoke stream key %s: %w", id, ErrKeyNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("revoke stream key %s: %w", id, err)
	}
	k.CreatedAt = time.UnixMilli(created).UTC()
	t := time.UnixMilli(revoked.Int64).UTC()
	k.RevokedAt = &t
	return k, nil
}

// Lookup resolves a stream key (rtmp.KeyStore). The key is hashed before
// it reaches the database, so the index lookup's timing depends only on
// the hash, and errors never contain the key.
func (s *KeyStore) Lookup(ctx context.Context, key string) (rtmp.Binding, error) {
	b, _, err := s.lookup(ctx, key)
	return b, err
}

// lookup also returns the key's id (for logs and metrics: never the key).
func (s *KeyStore) lookup(ctx context.Context, key string) (rtmp.Binding, string, error) {
	if key == "" || len(key) > 256 {
		return rtmp.Binding{}, "", rtmp.ErrUnknownKey
	}
	var b rtmp.Binding
	var id string
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT id, room, name, identity, revoked_at FROM ingress_keys WHERE key_hash = ?`, hashKey(key)).
		Scan(&id, &b.Room, &b.Name, &b.Identity, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return rtmp.Binding{}, "", rtmp.ErrUnknownKey
	case err != nil:
		return rtmp.Binding{}, "", fmt.Errorf("look up stream key: %w", err)
	case revoked.Valid:
		return rtmp.Binding{}, id, fmt.Errorf("stream key %s: %w", id, rtmp.ErrRevoked)
	}
	b.KeyID = id
	return b, id, nil
}

// Revoked reports whether the key with this id is revoked (or gone). The
// Service asks it about live streams, so a revocation made by another
// process (`parley ingress revoke`) ends them too.
func (s *KeyStore) Revoked(ctx context.Context, id string) (bool, error) {
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT revoked_at FROM ingress_keys WHERE id = ?`, id).Scan(&revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("check stream key %s: %w", id, err)
	}
	return revoked.Valid, nil
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// newSecret returns "sk_" and 32 URL-safe base64 characters (192 random
// bits): safe in an RTMP URL path, a Bearer token and a shell argument.
func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("stream key: %w", err)
	}
	return "sk_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// normalizeKeyRequest trims and checks r and fills the default identity.
func normalizeKeyRequest(r KeyRequest) (KeyRequest, error) {
	r.Room = strings.TrimSpace(r.Room)
	r.Name = strings.TrimSpace(r.Name)
	r.Identity = strings.TrimSpace(r.Identity)
	check := func(field, v string, max int, required bool) error {
		switch {
		case v == "" && required:
			return fmt.Errorf("%w: %s is required", ErrInvalid, field)
		case len(v) > max:
			return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, max)
		case !utf8.ValidString(v) || strings.ContainsFunc(v, isControl):
			return fmt.Errorf("%w: %s must be UTF-8 text without control characters", ErrInvalid, field)
		}
		return nil
	}
	if err := errors.Join(check("room", r.Room, maxRoomLen, true), check("name", r.Name, maxNameLen, true),
		check("identity", r.Identity, maxIdentityLen, false)); err != nil {
		return r, err
	}
	if r.Identity == "" {
		r.Identity = DefaultIdentity(r.Name)
	}
	return r, nil
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f }

// DefaultIdentity is the identity a stream named name joins as when its
// key names none: "ingress-" and the name lower-cased, with every run of
// characters other than letters and digits turned into one '-'.
func DefaultIdentity(name string) string {
	var b strings.Builder
	b.WriteString("ingress-")
	dash := false
	for _, c := range strings.ToLower(name) {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			if dash && b.Len() > len("ingress-") {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(c)
			continue
		}
		dash = true
	}
	if b.Len() == len("ingress-") {
		b.WriteString("stream")
	}
	s := b.String()
	for len(s) > maxIdentityLen {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
