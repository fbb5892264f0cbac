package signaling

import (
	"context"
	"errors"
	"sync"

	"github.com/parleyhq/parley/chat"
)

// maxSeenIdentities bounds the cache of identities known to be remembered
// in the chat store (about 100 bytes each). Past it, a join writes through
// to the store every time, which is idempotent, just slower.
const maxSeenIdentities = 1 << 20

// seenIdentities caches, for this process, the identities already
// remembered in the chat store, so a join writes there only on first
// sight and a lookup of someone seen needs no query. It only ever holds
// identities the store has (or, in tests, is told it has).
type seenIdentities struct {
	mu  sync.Mutex
	max int
	ids map[string]struct{}
}

func newSeenIdentities(max int) *seenIdentities {
	return &seenIdentities{max: max, ids: map[string]struct{}{}}
}

func (k *seenIdentities) add(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ids) < k.max {
		k.ids[id] = struct{}{}
	}
}

func (k *seenIdentities) has(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.ids[id]
	return ok
}

// rememberIdentity records that id has used this server (it joined, or
// was issued a token by POST /api/admin/tokens), in the chat store, so it
// stays known across restarts and on every node sharing the store. The
// cache makes repeat sightings free. A failure is logged and not cached,
// so the next sighting tries again; it does not refuse the join or the
// token. Without chat there is no one to message, and nothing to record.
func (s *Server) rememberIdentity(id string) {
	if s.chat == nil || s.seen.has(id) {
		return
	}
	ctx, cancel := s.chatCtx()
	defer cancel()
	if err := s.chat.RememberIdentity(ctx, id); err != nil {
		if errors.Is(err, chat.ErrInvalid) || errors.Is(err, chat.ErrTooLarge) {
			// Not an id chat can address anyway.
			s.log.Debug("identity not remembered", "identity", id, "err", err)
		} else {
			s.log.Warn("could not remember identity in the chat store", "identity", id, "err", err)
		}
		return
	}
	s.seen.add(id)
}

// identityKnown reports whether chat may address id (docs/protocol.md,
// "Who can be messaged"): someone who has ever joined this server, or was
// issued a token by POST /api/admin/tokens (remembered in the chat store,
// so this holds across restarts and nodes), or who is a member of a
// conversation (a call room's chat counts). A mistyped or made-up
// identity is neither, so a message to it is refused instead of going to
// nobody. The cache answers for those seen by this process; the store
// for everyone else.
func (s *Server) identityKnown(ctx context.Context, id string) (bool, error) {
	if s.seen.has(id) {
		return true, nil
	}
	return s.chat.IdentityKnown(ctx, id)
}
