package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/parleyhq/parley/chat"
)

// RememberIdentity implements chat.IdentityStore.
func (s *Store) RememberIdentity(ctx context.Context, id string) error {
	if err := chat.ValidateIdentity(chat.Identity{ID: id}); err != nil {
		return fmt.Errorf("remember identity: %w", err)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.ws.rememberIdentity).ExecContext(ctx, id, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("remember identity %s: %w", id, err)
	}
	return nil
}

// IdentityKnown implements chat.IdentityStore.
func (s *Store) IdentityKnown(ctx context.Context, id string) (bool, error) {
	var known bool
	if err := s.rs.identityKnown.QueryRowContext(ctx, id).Scan(&known); err != nil {
		return false, fmt.Errorf("identity known %s: %w", id, mapErr(err))
	}
	return known, nil
}
