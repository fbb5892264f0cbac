package chat

import "context"

// Store persists conversations, members, events, watermarks and the
// identities that have used the server. It is four small interfaces so a fake or a partial implementation stays easy; an
// implementation must be safe for concurrent use.
//
// # Seq allocation (the contract every implementation keeps)
//
// Each conversation row carries a counter, last_seq. Append runs one
// transaction that
//
//  1. looks up (conversation, sender, client_msg_id); if it exists, returns
//     that event with duplicate = true and writes nothing;
//  2. checks the sender is a member;
//  3. increments the counter: UPDATE conversations SET last_seq = last_seq+1
//     WHERE id = $1 RETURNING last_seq;
//  4. inserts the event with that seq, under UNIQUE (conversation, seq) and
//     UNIQUE (conversation, sender, client_msg_id);
//  5. commits, and only then returns.
//
// Why this is safe under concurrency, including several server nodes on one
// PostgreSQL: step 3 takes the row lock on the conversation's counter and
// holds it until commit, so appenders to one conversation run one after the
// other and each reads the value the previous one committed (READ COMMITTED
// re-reads a row after waiting for its lock). A transaction that fails rolls
// its increment back with everything else, so no seq is ever skipped, and
// because the lock is taken before the insert, no two events get the same
// seq; the unique constraint is a second guard that turns a bug into an
// error instead of corrupt history. A retry racing its own original waits
// on the same row lock, and by the time it runs step 1 again (a fresh
// statement snapshot) it sees the committed original, so it is reported as a
// duplicate; if an implementation orders the steps differently, the unique
// dedup constraint still fails the second insert, which it must map to
// "duplicate" by re-reading. Different conversations never contend. The
// SQLite implementation gets the same effect from SQLite's single writer.
type Store interface {
	ConversationStore
	MessageStore
	WatermarkStore
	IdentityStore
	Close() error
}

// ConversationStore creates conversations and manages membership.
type ConversationStore interface {
	// EnsureRoom returns the room conversation for name, creating it if
	// needed. Concurrent calls for one name return the same conversation.
	EnsureRoom(ctx context.Context, name string) (Conversation, error)
	// EnsureDirect returns the direct conversation of a and b (in either
	// order), creating it with both as members if needed.
	EnsureDirect(ctx context.Context, a, b Identity) (Conversation, error)
	// CreateGroup creates a group whose members are creator (as admin) and
	// members (as plain members).
	CreateGroup(ctx context.Context, title string, creator Identity, members []Identity) (Conversation, error)
	// Conversation returns one conversation, or ErrNotFound.
	Conversation(ctx context.Context, id string) (Conversation, error)
	// AddMember adds m or, if already a member, updates display name and
	// role while keeping its watermarks. It fails with ErrNotFound for an
	// unknown conversation.
	AddMember(ctx context.Context, m Member) error
	// Member returns one membership, or ErrNotMember.
	Member(ctx context.Context, convID, identity string) (Member, error)
}

// MessageStore appends and reads events.
type MessageStore interface {
	// Append stores msg with the next seq, or returns the original event if
	// (conversation, sender, client message id) was stored before
	// (duplicate = true; ErrConflict if the original has different
	// content). It returns only after the write is durable. The sender must
	// be a member (ErrNotMember), except for system events with no sender.
	Append(ctx context.Context, msg Message) (stored Message, duplicate bool, err error)
	// Range returns up to limit events with seq > afterSeq in ascending
	// order: gap refill and catch-up. An empty result means nothing newer.
	Range(ctx context.Context, convID string, afterSeq int64, limit int) ([]Message, error)
	// History returns up to limit events with seq < beforeSeq, newest
	// first: scroll-back. beforeSeq <= 0 means from the newest.
	History(ctx context.Context, convID string, beforeSeq int64, limit int) ([]Message, error)
	// Event returns the event at seq, or ErrNotFound.
	Event(ctx context.Context, convID string, seq int64) (Message, error)
}

// WatermarkStore tracks what each member has received and read.
type WatermarkStore interface {
	// AdvanceWatermarks raises identity's delivered and read marks to at
	// least the given values (0 leaves a mark as is) and returns the
	// result. Marks never go backwards; read also raises delivered. A mark
	// beyond the conversation's last seq is ErrInvalid.
	AdvanceWatermarks(ctx context.Context, convID, identity string, w Watermarks) (Watermarks, error)
	// Conversations lists identity's conversations with last seq,
	// watermarks and unread counts, most recently active first.
	Conversations(ctx context.Context, identity string) ([]ConversationSummary, error)
	// Summary returns identity's entry for one conversation, as
	// Conversations lists it, or ErrNotMember when identity is not a
	// member of it (or it does not exist).
	Summary(ctx context.Context, convID, identity string) (ConversationSummary, error)
}

// IdentityStore remembers which identities have used the server, so that
// "who can be messaged" (docs/protocol.md) survives a restart and is the
// same on every node sharing the store.
type IdentityStore interface {
	// RememberIdentity records that id has used the server (joined, or
	// was issued a token), keeping the time it was first seen. It is
	// idempotent: remembering a known identity changes nothing. An id that
	// fails ValidateIdentity is ErrInvalid (or ErrTooLarge).
	RememberIdentity(ctx context.Context, id string) error
	// IdentityKnown reports whether id was remembered or is a member of
	// any conversation.
	IdentityKnown(ctx context.Context, id string) (bool, error)
}
