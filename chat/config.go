package chat

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
)

// Config is the "chat" section of Parley's configuration.
type Config struct {
	// Store picks the Store implementation: StoreSQLite or StorePostgres.
	Store   string `yaml:"store" doc:"where chat is stored: sqlite (one file under data_dir, for one node; the default) or postgres (chat.postgres_url, shared by several nodes)"`
	DataDir string `yaml:"data_dir" doc:"directory for the chat database (created if missing)"`
	// DBPath overrides DataDir when set.
	DBPath          string        `yaml:"db_path" doc:"path of the SQLite database file; empty means <data_dir>/chat.db"`
	MaxMessageBytes int           `yaml:"max_message_bytes" doc:"largest message text in bytes of UTF-8"`
	HistoryPageMax  int           `yaml:"history_page_max" doc:"most events one history or range page returns"`
	CatchUpPageMax  int           `yaml:"catch_up_page_max" doc:"most missed events returned per conversation on reconnect; clients page the rest"`
	CatchUpTotalMax int           `yaml:"catch_up_total_max" doc:"most missed events returned by one reconnect across all conversations (bounds the reply); the rest is marked more and paged by the client"`
	MaxGroupMembers int           `yaml:"max_group_members" doc:"largest group a member may create"`
	BusyTimeout     time.Duration `yaml:"busy_timeout" doc:"how long a database write waits for a lock before failing"`
	GroupCommitMax  int           `yaml:"group_commit_max" doc:"most concurrent sends committed in one transaction (1 disables batching)"`
	ReadConns       int           `yaml:"read_conns" doc:"database connections for concurrent reads"`
	// PostgresURL holds a password; it is never logged (see pgstore.Redact).
	PostgresURL      string `yaml:"postgres_url" doc:"PostgreSQL URL for store: postgres, e.g. postgres://parley:PASSWORD@db.example:5432/parley?sslmode=verify-full (search_path=SCHEMA picks a schema; the password may also come from PGPASSWORD or ~/.pgpass; it is never logged)"`
	PostgresMaxConns int    `yaml:"postgres_max_conns" doc:"most PostgreSQL connections this node opens for chat (store: postgres)"`
}

// The values of Config.Store.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// DefaultConfig returns the configuration used when the file says nothing.
func DefaultConfig() Config {
	return Config{
		Store:            StoreSQLite,
		PostgresMaxConns: 10,
		DataDir:          "data",
		MaxMessageBytes:  DefaultMaxMessageBytes,
		HistoryPageMax:   200,
		CatchUpPageMax:   100,
		CatchUpTotalMax:  2000,
		MaxGroupMembers:  256,
		BusyTimeout:      5 * time.Second,
		GroupCommitMax:   64,
		ReadConns:        4,
	}
}

// Validate reports every bad value, each naming its yaml key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("chat.%s: "+format, append([]any{key}, args...)...))
	}
	switch c.Store {
	case StoreSQLite:
		if c.DataDir == "" && c.DBPath == "" {
			bad("data_dir", "must be set (or set chat.db_path)")
		}
	case StorePostgres:
		// The URL is never quoted back: it may hold a password.
		if c.PostgresURL == "" {
			bad("postgres_url", "must be set when chat.store is postgres")
		} else if u, err := url.Parse(c.PostgresURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" && u.Query().Get("host") == "" {
			bad("postgres_url", "must be a URL postgres://[user[:password]@]host[:port]/database[?param=value...]")
		}
	default:
		bad("store", "must be sqlite or postgres, got %q", c.Store)
	}
	if c.PostgresMaxConns < 1 || c.PostgresMaxConns > 1000 {
		bad("postgres_max_conns", "must be between 1 and 1000, got %d", c.PostgresMaxConns)
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > 1<<20 {
		bad("max_message_bytes", "must be between 1 and 1048576, got %d", c.MaxMessageBytes)
	}
	if c.HistoryPageMax < 1 || c.HistoryPageMax > 10000 {
		bad("history_page_max", "must be between 1 and 10000, got %d", c.HistoryPageMax)
	}
	if c.CatchUpTotalMax < c.CatchUpPageMax || c.CatchUpTotalMax > 1000000 {
		bad("catch_up_total_max", "must be between catch_up_page_max and 1000000, got %d", c.CatchUpTotalMax)
	}
	if c.CatchUpPageMax < 1 || c.CatchUpPageMax > 10000 {
		bad("catch_up_page_max", "must be between 1 and 10000, got %d", c.CatchUpPageMax)
	}
	if c.MaxGroupMembers < 2 {
		bad("max_group_members", "must be at least 2, got %d", c.MaxGroupMembers)
	}
	if c.BusyTimeout < 0 {
		bad("busy_timeout", "must not be negative, got %s", c.BusyTimeout)
	}
	if c.GroupCommitMax < 1 || c.GroupCommitMax > 4096 {
		bad("group_commit_max", "must be between 1 and 4096, got %d", c.GroupCommitMax)
	}
	if c.ReadConns < 1 || c.ReadConns > 64 {
		bad("read_conns", "must be between 1 and 64, got %d", c.ReadConns)
	}
	return errors.Join(errs...)
}

// DatabasePath is where the SQLite file lives: DBPath if set, otherwise
// chat.db inside DataDir.
func (c Config) DatabasePath() string {
	if c.DBPath != "" {
		return c.DBPath
	}
	return filepath.Join(c.DataDir, "chat.db")
}
