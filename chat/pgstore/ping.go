package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Ping checks that the store's database answers (for /healthz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("chat store on PostgreSQL: %w", s.scrub(err))
	}
	return nil
}

// Check connects to connString once and pings it, without touching the
// schema (for `parley config check`). Errors never carry the password.
func Check(ctx context.Context, connString string) error {
	s := &Store{secrets: passwords(connString)}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("PostgreSQL %s: %w", Redact(connString), s.scrub(err))
	}
	if cfg.Password != "" {
		s.secrets = append(s.secrets, cfg.Password)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("PostgreSQL %s: %w", Redact(connString), s.scrub(err))
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL %s: %w", Redact(connString), s.scrub(err))
	}
	return nil
}
