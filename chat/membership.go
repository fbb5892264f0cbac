package chat

import (
	"context"
	"errors"
	"fmt"
)

// ConversationOf returns one conversation of identity's. It answers
// ErrNotMember both when identity is not a member and when no such
// conversation exists, so a caller cannot learn from it which
// conversations exist that it does not belong to.
func (s *Service) ConversationOf(ctx context.Context, identity, convID string) (Conversation, error) {
	if _, err := s.store.Member(ctx, convID, identity); err != nil {
		if errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound) {
			return Conversation{}, fmt.Errorf("conversation %s: %w", convID, ErrNotMember)
		}
		return Conversation{}, fmt.Errorf("conversation %s: membership: %w", convID, err)
	}
	conv, err := s.store.Conversation(ctx, convID)
	if errors.Is(err, ErrNotFound) {
		return Conversation{}, fmt.Errorf("conversation %s: %w", convID, ErrNotMember)
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("conversation %s: %w", convID, err)
	}
	return conv, nil
}
