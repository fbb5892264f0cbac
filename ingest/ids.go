package ingest

import (
	"crypto/rand"
	"encoding/base32"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix and 16 random base-32 characters (80 bits), the
// same shape as signaling's participant ids.
func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // never fails on supported platforms (Go 1.24+)
	return prefix + idEncoding.EncodeToString(b)
}

// newResourceID returns 128 random bits for a WHIP resource URL, which
// is a capability: whoever knows it can end the stream.
func newResourceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return idEncoding.EncodeToString(b)
}
