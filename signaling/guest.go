package signaling

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// guestKeyLen is the size of the key that signs dev-mode guest
// credentials.
const guestKeyLen = 32

// A guest credential (dev mode) lets one browser keep its guest identity
// across reloads and server restarts: "<identity>.<mac>", the MAC being
// HMAC-SHA256 over the identity with the server's guest key. The browser
// keeps it in localStorage and hands it back to POST /api/dev/token; the
// server only ever hands out identities it minted, so a client cannot
// claim someone else's identity by naming it.
const guestMACContext = "parley guest credential v1\x00"

// newGuestKey returns key when it is long enough, otherwise a random key
// (guests then keep their identity only until the server restarts).
func newGuestKey(key []byte) []byte {
	if len(key) >= guestKeyLen {
		return key
	}
	k := make([]byte, guestKeyLen)
	_, _ = rand.Read(k) // crypto/rand never fails on supported platforms
	return k
}

func (s *Server) guestMAC(identity string) string {
	m := hmac.New(sha256.New, s.guestKey)
	m.Write([]byte(guestMACContext))
	m.Write([]byte(identity))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// guestCredential is the credential of a guest identity.
func (s *Server) guestCredential(identity string) string {
	return identity + "." + s.guestMAC(identity)
}

// guestIdentity returns the identity a credential vouches for, or "" when
// it is malformed or was not signed with this server's guest key.
func (s *Server) guestIdentity(cred string) string {
	if len(cred) > 256 {
		return ""
	}
	id, mac, ok := strings.Cut(cred, ".")
	if !ok || !strings.HasPrefix(id, "guest-") {
		return ""
	}
	if !hmac.Equal([]byte(mac), []byte(s.guestMAC(id))) {
		return ""
	}
	return id
}
