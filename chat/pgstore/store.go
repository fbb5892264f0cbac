// Package pgstore is the chat.Store on PostgreSQL, for Parley running on
// several machines: every node opens its own Store on the same database
// and the seq contract of chat.Store holds across them (a row lock on the
// conversation's counter, UNIQUE constraints as the second guard).
//
// Durability: Append returns only after PostgreSQL's COMMIT returned. A
// connection whose synchronous_commit is off (a server or role default) is
// set back to on, since with off a commit can be lost after it returned.
//
// The tables are prefixed chat_ so the database can be shared with other
// parts of Parley; the schema comes from the connection's search_path
// (Options.Schema, or search_path=... in the URL).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/chat"
)

// DefaultMaxConns is the pool size when Options.MaxConns is 0.
const DefaultMaxConns = 10

// Options tune the store; the zero value is usable.
type Options struct {
	// MaxConns bounds the connection pool. Default DefaultMaxConns.
	MaxConns int
	// Schema, when set, is the search_path of every pooled connection:
	// the schema (which must exist) that holds the chat tables.
	Schema string
	// MaxMessageBytes bounds stored text. Default chat.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Now is the clock for CreatedAt. Default time.Now.
	Now func() time.Time
	// NewID makes server and conversation ids. Default UUIDv7.
	NewID func() string
}

// OptionsFromConfig maps the chat section of the configuration to Options.
func OptionsFromConfig(c chat.Config) Options {
	return Options{MaxConns: c.PostgresMaxConns, MaxMessageBytes: c.MaxMessageBytes}
}

func (o *Options) setDefaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = chat.DefaultMaxMessageBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
}

// Store is the PostgreSQL chat.Store.
type Store struct {
	opts    Options
	pool    *pgxpool.Pool
	secrets []string // passwords to scrub from error texts

	closed    atomic.Bool
	closeOnce sync.Once

	// dedupRaces counts appends whose insert lost to a concurrent copy of
	// the same client message and were answered by re-reading it.
	dedupRaces atomic.Int64
}

var _ chat.Store = (*Store)(nil)

// Open connects to PostgreSQL at connString (a postgres:// URL or
// key=value string, as libpq takes), checks the server answers, and
// creates or migrates the schema. Errors never contain the password.
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	opts.setDefaults()
	s := &Store{opts: opts, secrets: passwords(connString)}
	fail := func(err error) (*Store, error) {
		return nil, fmt.Errorf("open chat store on PostgreSQL %s: %w", Redact(connString), s.scrub(err))
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return fail(err)
	}
	if p := cfg.ConnConfig.Password; p != "" {
		s.secrets = append(s.secrets, p) // also from PGPASSWORD or a passfile
	}
	cfg.MaxConns = int32(min(opts.MaxConns, math.MaxInt32))
	cfg.MinConns = 0
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	cfg.AfterConnect = durableCommits
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	if err := migrate(ctx, s.pool); err != nil {
		s.pool.Close()
		return fail(err)
	}
	return s, nil
}

// durableCommits makes sure a commit on c has reached the WAL on disk
// before it returns: "off" (set for the server, database or role) is the
// one value of synchronous_commit where it has not.
func durableCommits(ctx context.Context, c *pgx.Conn) error {
	var v string
	if err := c.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if v == "off" {
		if _, err := c.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			return fmt.Errorf("set synchronous_commit: %w", err)
		}
	}
	return nil
}

// Close closes the pool (waiting for queries in flight); later calls fail
// with chat.ErrClosed. It is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.pool.Close()
	})
	return nil
}

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// check is the first step of every method: a closed store says so.
func (s *Store) check() error {
	if s.closed.Load() {
		return chat.ErrClosed
	}
	return nil
}

// mapErr marks failures of a closed store as chat.ErrClosed and scrubs
// passwords from the text. It leaves nil and chat's own sentinels alone.
func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() && !errors.Is(err, chat.ErrClosed) {
		err = fmt.Errorf("%w: %w", chat.ErrClosed, err)
	}
	return s.scrub(err)
}

func (s *Store) scrub(err error) error {
	msg := err.Error()
	for _, p := range s.secrets {
		if p != "" && strings.Contains(msg, p) {
			return redactedError{err: err, secrets: s.secrets}
		}
	}
	return err
}

// redactedError is err with the passwords blanked out of its text; errors.Is
// and errors.As still see err.
type redactedError struct {
	err     error
	secrets []string
}

func (e redactedError) Error() string {
	msg := e.err.Error()
	for _, p := range e.secrets {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

func (e redactedError) Unwrap() error { return e.err }

//nolint:gochecknoglobals // compiled once, read-only
var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns connString fit for a log line or an error: the password
// of a URL, its password query parameter, or a key=value password is
// replaced by xxxxx.
func Redact(connString string) string {
	if u, err := url.Parse(connString); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	if strings.Contains(connString, "://") {
		return "(unparsable URL)" // it could hold anything
	}
	return kvPassword.ReplaceAllString(connString, "${1}xxxxx")
}

// passwords are the secrets in connString in the forms they may appear in
// a driver's message: as written and decoded.
func passwords(connString string) []string {
	var out []string
	if u, err := url.Parse(connString); err == nil {
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				out = append(out, p, url.PathEscape(p), url.QueryEscape(p))
			}
		}
		if p := u.Query().Get("password"); p != "" {
			out = append(out, p, url.QueryEscape(p))
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
		out = append(out, strings.Trim(m[2], "'"))
	}
	return out
}
