package chat

import (
	"context"
	"fmt"
	"slices"
)

// Page is one page of events. More says another page exists in the same
// direction.
type Page struct {
	Messages []Message
	More     bool
}

// ConversationCatchUp is what a reconnecting client missed in one
// conversation.
type ConversationCatchUp struct {
	Summary ConversationSummary
	// Messages after the client's last seq, ascending, at most one page;
	// if More, the client continues with Range from the last one's seq.
	Messages []Message
	More     bool
}

// CatchUpResult answers a reconnect.
type CatchUpResult struct {
	// Conversations lists every conversation of the identity, most recent
	// activity first. Those the client did not name in lastSeqs carry no
	// messages: the client loads them with History when the user opens one.
	Conversations []ConversationCatchUp
	// Gone lists conversations the client named that the identity is no
	// longer a member of (or that do not exist), sorted.
	Gone []string
}

// MarkDelivered raises identity's delivered watermark in convID to seq.
func (s *Service) MarkDelivered(ctx context.Context, identity, convID string, seq int64) (Watermarks, error) {
	return s.store.AdvanceWatermarks(ctx, convID, identity, Watermarks{Delivered: seq})
}

// MarkRead raises identity's read (and so delivered) watermark to seq.
func (s *Service) MarkRead(ctx context.Context, identity, convID string, seq int64) (Watermarks, error) {
	return s.store.AdvanceWatermarks(ctx, convID, identity, Watermarks{Read: seq})
}

// Conversations lists identity's conversations with last seq, watermarks
// and unread counts.
func (s *Service) Conversations(ctx context.Context, identity string) ([]ConversationSummary, error) {
	return s.store.Conversations(ctx, identity)
}

// Summary returns identity's entry for one conversation (watermarks and
// unread count included), as Conversations lists it, or ErrNotMember.
func (s *Service) Summary(ctx context.Context, identity, convID string) (ConversationSummary, error) {
	return s.store.Summary(ctx, convID, identity)
}

// Range returns events after afterSeq (gap refill), at most limit, capped
// by chat.history_page_max.
func (s *Service) Range(ctx context.Context, identity, convID string, afterSeq int64, limit int) (Page, error) {
	if afterSeq < 0 {
		return Page{}, fmt.Errorf("range: %w: negative seq", ErrInvalid)
	}
	return s.page(ctx, identity, convID, limit, func(n int) ([]Message, error) {
		return s.store.Range(ctx, convID, afterSeq, n)
	})
}

// History returns events before beforeSeq (0: from the newest), newest
// first, at most limit, capped by chat.history_page_max.
func (s *Service) History(ctx context.Context, identity, convID string, beforeSeq int64, limit int) (Page, error) {
	return s.page(ctx, identity, convID, limit, func(n int) ([]Message, error) {
		return s.store.History(ctx, convID, beforeSeq, n)
	})
}

func (s *Service) page(ctx context.Context, identity, convID string, limit int, fetch func(int) ([]Message, error)) (Page, error) {
	if limit <= 0 || limit > s.cfg.HistoryPageMax {
		limit = s.cfg.HistoryPageMax
	}
	if _, err := s.store.Member(ctx, convID, identity); err != nil {
		return Page{}, err
	}
	// One extra row tells whether another page exists without a count.
	msgs, err := fetch(limit + 1)
	if err != nil {
		return Page{}, err
	}
	if len(msgs) > limit {
		return Page{Messages: msgs[:limit], More: true}, nil
	}
	return Page{Messages: msgs}, nil
}

// CatchUp answers a reconnect: lastSeqs is the newest seq the client holds
// per conversation id. For each of identity's conversations it returns the
// summary (last seq, watermarks, unread) and, for those in lastSeqs, up to
// pageLimit missed events (capped by chat.catch_up_page_max). The events
// of all conversations together stop at chat.catch_up_total_max, so the
// reply stays bounded for a member of many busy conversations: the
// conversations after that (least recent activity) come with More set and
// no events, and the client pages them like any other.
func (s *Service) CatchUp(ctx context.Context, identity string, lastSeqs map[string]int64, pageLimit int) (CatchUpResult, error) {
	if pageLimit <= 0 || pageLimit > s.cfg.CatchUpPageMax {
		pageLimit = s.cfg.CatchUpPageMax
	}
	for id, seq := range lastSeqs {
		if seq < 0 {
			return CatchUpResult{}, fmt.Errorf("catch up: %w: negative seq for %s", ErrInvalid, id)
		}
	}
	sums, err := s.store.Conversations(ctx, identity)
	if err != nil {
		return CatchUpResult{}, fmt.Errorf("catch up: %w", err)
	}
	res := CatchUpResult{Conversations: make([]ConversationCatchUp, 0, len(sums))}
	seen := make(map[string]bool, len(sums))
	budget := s.cfg.CatchUpTotalMax
	for _, sum := range sums {
		id := sum.Conversation.ID
		seen[id] = true
		cu := ConversationCatchUp{Summary: sum}
		if after, ok := lastSeqs[id]; ok && after < sum.Conversation.LastSeq {
			if budget <= 0 {
				cu.More = true
				res.Conversations = append(res.Conversations, cu)
				continue
			}
			n := min(pageLimit, budget)
			msgs, err := s.store.Range(ctx, id, after, n+1)
			if err != nil {
				return CatchUpResult{}, fmt.Errorf("catch up %s: %w", id, err)
			}
			if len(msgs) > n {
				msgs, cu.More = msgs[:n], true
			}
			cu.Messages = msgs
			budget -= len(msgs)
		}
		res.Conversations = append(res.Conversations, cu)
	}
	for id := range lastSeqs {
		if !seen[id] {
			res.Gone = append(res.Gone, id)
		}
	}
	slices.Sort(res.Gone)
	return res, nil
}

// RememberIdentity records that identity has used the server (joined, or
// was issued a token), so it can be messaged from now on, across restarts
// and on every node sharing the store. It is idempotent.
func (s *Service) RememberIdentity(ctx context.Context, identity string) error {
	return s.store.RememberIdentity(ctx, identity)
}

// IdentityKnown reports whether identity was remembered by RememberIdentity
// or is a member of any conversation.
func (s *Service) IdentityKnown(ctx context.Context, identity string) (bool, error) {
	return s.store.IdentityKnown(ctx, identity)
}
