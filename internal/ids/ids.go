// Package ids makes the random identifiers that signaling and ingest hand
// out. Both packages' ids meet in one room (an ingest stream is a
// participant next to browser participants), so they share one generator
// rather than two copies that have to be kept the same shape.
package ids

import (
	"crypto/rand"
	"encoding/base32"
)

// encoding is lower-case base32 without padding: safe in URLs, JSON and
// the "<participant>|<track>" stream ids, and unambiguous to read aloud.
//
//nolint:gochecknoglobals // a read-only table
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns prefix followed by 16 random base32 characters (80 bits),
// for example New("PA_") for a participant sid.
func New(prefix string) string {
	return prefix + random(10)
}

// Secret returns 26 random base32 characters (128 bits), for ids that are
// capabilities: whoever knows one may act on what it names.
func Secret() string {
	return random(16)
}

func random(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
	return encoding.EncodeToString(b)
}
