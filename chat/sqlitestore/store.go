// Package sqlitestore is the embedded chat.Store: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode with one writer connection and a small
// pool of readers.
//
// Durability choice: synchronous=FULL. In WAL mode, NORMAL syncs the WAL
// only at checkpoints, so a power cut can lose the last transactions even
// though they committed, and the chat contract is "acked means stored".
// FULL fsyncs the WAL on every commit, so a commit that returned survives
// power loss; the cost (one fsync per commit) is paid back by group commit,
// which puts many concurrent sends into one transaction.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/parleyhq/parley/chat"
)

// Options tune the store; the zero value is usable.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock held by another
	// process (a backup tool, the sqlite3 shell). Default 5s.
	BusyTimeout time.Duration
	// MaxBatch > 1 turns on group commit: concurrent Appends are written in
	// one transaction of up to MaxBatch events, each still acknowledged
	// only after that transaction commits. 0 or 1: one transaction each.
	MaxBatch int
	// ReadConns is the size of the reader pool. Default 4.
	ReadConns int
	// MaxMessageBytes bounds stored text. Default chat.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Now is the clock for CreatedAt. Default time.Now.
	Now func() time.Time
	// NewID makes server and conversation ids. Default UUIDv7, which sorts
	// by creation time.
	NewID func() string
}

// OptionsFromConfig maps the chat section of the configuration to Options.
func OptionsFromConfig(c chat.Config) Options {
	return Options{
		BusyTimeout:     c.BusyTimeout,
		MaxBatch:        c.GroupCommitMax,
		ReadConns:       c.ReadConns,
		MaxMessageBytes: c.MaxMessageBytes,
	}
}

func (o *Options) setDefaults() {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
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

// Store is the SQLite chat.Store.
type Store struct {
	opts   Options
	writer *sql.DB // exactly one connection: SQLite has one writer anyway
	reader *sql.DB // query_only connections for concurrent reads under WAL
	ws     writeStmts
	rs     readStmts

	batch *batcher // nil without group commit

	closeOnce sync.Once
	closeErr  error
}

var _ chat.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, migrates its schema
// and prepares statements. The parent directory is created with mode 0700.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts.setDefaults()
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open chat db %q: %w: path must be non-empty without '?' or '#'", path, chat.ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open chat db: %w", err)
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())
	// _txlock=immediate: a write transaction takes the write lock at BEGIN,
	// so it can never fail half-way with SQLITE_BUSY on lock upgrade.
	wdsn := "file:" + path + "?" + busy +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	writer, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("open chat db %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	s := &Store{opts: opts, writer: writer}
	if err := s.init(ctx, path, busy); err != nil {
		_ = s.closeDBs() // the open error is the one to report
		return nil, fmt.Errorf("open chat db %s: %w", path, err)
	}
	if opts.MaxBatch > 1 {
		s.batch = newBatcher(s, opts.MaxBatch)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, path, busy string) error {
	var mode string
	if err := s.writer.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal (is the file on a filesystem without shared memory?)", mode)
	}
	if err := migrate(ctx, s.writer); err != nil {
		return err
	}
	var err error
	s.reader, err = sql.Open("sqlite", "file:"+path+"?"+busy+"&_pragma=query_only(1)")
	if err != nil {
		return err
	}
	s.reader.SetMaxOpenConns(s.opts.ReadConns)
	s.reader.SetMaxIdleConns(s.opts.ReadConns)
	if err := s.ws.prepare(ctx, s.writer); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := s.rs.prepare(ctx, s.reader); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// Close stops the group-commit writer (Appends waiting for it fail with
// chat.ErrClosed) and closes the database. It is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.batch != nil {
			s.batch.stop()
		}
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	errs = append(errs, s.ws.close(), s.rs.close())
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	errs = append(errs, s.writer.Close())
	return errors.Join(errs...)
}

func (s *Store) now() int64 { return s.opts.Now().UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// mapErr turns database/sql's "closed" errors into chat.ErrClosed so callers
// can tell shutdown from a real failure.
func mapErr(err error) error {
	if errors.Is(err, sql.ErrConnDone) || (err != nil && strings.Contains(err.Error(), "sql: database is closed")) {
		return fmt.Errorf("%w: %w", chat.ErrClosed, err)
	}
	return err
}
