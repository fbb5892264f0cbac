package ingest

import (
	"context"

	"github.com/parleyhq/parley/rtmp"
)

// StreamKeys is a stream-key store as cmd/parley and the Service use it:
// the SQLite KeyStore (ingress.db) on a single node, PGKeyStore in a
// cluster (chat.store: postgres), where every node must see the same
// keys: a key made through any node's admin API works for RTMP and WHIP
// on all of them, and a revocation made on one ends the key's live
// streams on all (each node's revocation watcher polls Revoked).
//
// Both implementations give the same answers: normalised requests and
// the same ErrInvalid texts, only the SHA-256 of a secret stored,
// rtmp.ErrUnknownKey / rtmp.ErrRevoked from Lookup, ErrKeyNotFound from
// Revoke, revoking twice keeping the first time, List oldest first.
type StreamKeys interface {
	rtmp.KeyStore // Lookup
	revocationChecker

	Create(ctx context.Context, r KeyRequest) (Key, error)
	List(ctx context.Context) ([]Key, error)
	Revoke(ctx context.Context, id string) (Key, error)
	Close() error
}

var (
	_ StreamKeys = (*KeyStore)(nil)
	_ StreamKeys = (*PGKeyStore)(nil)
)
