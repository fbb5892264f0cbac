package pgstore

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/chat"
)

// RememberIdentity implements chat.IdentityStore. Concurrent calls from
// several nodes are safe: the first insert wins and keeps its first-seen
// time.
func (s *Store) RememberIdentity(ctx context.Context, id string) error {
	if err := chat.ValidateIdentity(chat.Identity{ID: id}); err != nil {
		return fmt.Errorf("remember identity: %w", err)
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("remember identity: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO chat_identities (id, first_seen) VALUES ($1, $2)
		ON CONFLICT (id) DO NOTHING`, id, s.now())
	if err != nil {
		return fmt.Errorf("remember identity %s: %w", id, s.mapErr(err))
	}
	return nil
}

// IdentityKnown implements chat.IdentityStore.
func (s *Store) IdentityKnown(ctx context.Context, id string) (bool, error) {
	if err := s.check(); err != nil {
		return false, fmt.Errorf("identity known: %w", err)
	}
	var known bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chat_identities WHERE id = $1)
		OR EXISTS (SELECT 1 FROM chat_members WHERE identity = $1)`, id).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("identity known %s: %w", id, s.mapErr(err))
	}
	return known, nil
}
