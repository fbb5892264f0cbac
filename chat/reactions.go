package chat

import (
	"context"
	"fmt"
	"slices"
)

// Reactions are the emoji a member may react to a message with: a short
// fixed set, as in most messengers, which also bounds what a reaction
// event stores and how many one member can put on one message.
//
//nolint:gochecknoglobals // a read-only table
var Reactions = []string{"👍", "❤️", "😂", "😮", "😢", "🎉"}

// ValidateReaction checks that emoji is one of Reactions.
func ValidateReaction(emoji string) error {
	if !slices.Contains(Reactions, emoji) {
		return fmt.Errorf("%w: reaction must be one of %v", ErrInvalid, Reactions)
	}
	return nil
}

// React adds (on) or takes back (!on) the sender's reaction emoji to a
// text message of the conversation. Only members react (the store checks
// membership in the append, as for messages); the reaction is an event in
// the conversation's log, so it is durable, synced and ordered like any
// other, and clients fold it into its target (Fold). Reacting twice with
// the same emoji, or taking back one never given, is stored and changes
// nothing when folded.
func (s *Service) React(ctx context.Context, sender Identity, convID, clientMsgID string, targetSeq int64, emoji string, on bool) (Ack, error) {
	if err := ValidateReaction(emoji); err != nil {
		return s.reject("react", err)
	}
	target, _, err := s.target(ctx, sender, convID, targetSeq)
	if err != nil {
		return s.reject("react", err)
	}
	if target.Kind != EventText {
		return s.reject("react", fmt.Errorf("%w: seq %d is a %s event; only messages get reactions", ErrInvalid, targetSeq, target.Kind))
	}
	kind := EventReact
	if !on {
		kind = EventUnreact
	}
	return s.append(ctx, Message{ConversationID: convID, ClientMsgID: clientMsgID, Sender: sender, Kind: kind, Text: emoji, TargetSeq: targetSeq})
}
