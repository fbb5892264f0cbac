// Package auth issues and verifies Parley access tokens: HS256 JWTs signed
// with an API key secret and carrying one identity, one room and a set of
// grants. Tokens and secrets are never logged or put in error messages.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors returned (wrapped) by Verify, so callers can tell an
// expired token (the user should fetch a new one) from a bad one.
var (
	ErrExpired = errors.New("token expired")
	ErrInvalid = errors.New("token invalid")
)

// MinSecretBytes is the shortest accepted API secret: HS256 needs a key
// at least as long as its 256-bit output to keep its strength.
const MinSecretBytes = 32

// Leeway tolerates small clock differences between the machine that
// issued a token and the one verifying it.
const Leeway = 5 * time.Second

// AllRooms in Claims.Room lets an admin token act on every room.
const AllRooms = "*"

// maxTokenBytes bounds what Verify will parse; real tokens are far smaller.
const maxTokenBytes = 8192

// Grants say what a token's holder may do.
type Grants struct {
	Publish   bool `json:"publish"`
	Subscribe bool `json:"subscribe"`
	Chat      bool `json:"chat"`
	Admin     bool `json:"admin"`
	// Moderate makes the holder a moderator of its room: it may admit
	// from the lobby, change the room's settings, mute, stop, remove and
	// ban others and end the meeting (docs/protocol.md, Moderation).
	Moderate bool `json:"moderate"`
}

// Claims are the verified contents of a token.
type Claims struct {
	Identity string
	Name     string
	// Room is a room name, AllRooms for admin tokens, or empty for a
	// messaging-only token (which must carry the chat grant).
	Room      string
	Grants    Grants
	ExpiresAt time.Time
	IssuedAt  time.Time
	KeyID     string // the API key that signed the token
}

// jwtClaims is the wire form: standard claims plus ours.
type jwtClaims struct {
	Name   string `json:"name,omitempty"`
	Room   string `json:"room"`
	Grants Grants `json:"grants"`
	jwt.RegisteredClaims
}

// KeySet maps API key ids to their secrets. It is immutable after
// NewKeySet, so it is safe for concurrent use.
type KeySet struct {
	keys map[string][]byte
	ids  []string // sorted, for a deterministic DefaultKeyID
	now  func() time.Time
}

// NewKeySet validates and copies the given key id -> secret map.
func NewKeySet(keys map[string]string) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("no API keys configured")
	}
	ks := &KeySet{keys: make(map[string][]byte, len(keys)), now: time.Now}
	for id, secret := range keys {
		if err := validKeyID(id); err != nil {
			return nil, err
		}
		if len(secret) < MinSecretBytes {
			// Name the key, never the secret.
			return nil, fmt.Errorf("API key %q: secret must be at least %d bytes", id, MinSecretBytes)
		}
		ks.keys[id] = []byte(secret)
		ks.ids = append(ks.ids, id)
	}
	sort.Strings(ks.ids)
	return ks, nil
}

func validKeyID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("API key id %q: must be 1 to 64 characters", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("API key id %q: only letters, digits, '_' and '-' allowed", id)
		}
	}
	return nil
}

// DefaultKeyID returns the first key id in sorted order; servers use it to
// sign tokens they mint themselves (dev guest tokens).
func (k *KeySet) DefaultKeyID() string { return k.ids[0] }

// CheckSecret reports whether secret belongs to keyID, in constant time
// with respect to the secret's contents.
func (k *KeySet) CheckSecret(keyID, secret string) bool {
	want, ok := k.keys[keyID]
	if !ok {
		// Still compare so an unknown id costs about as much as a known one.
		want = make([]byte, MinSecretBytes)
		hmac.Equal(want, []byte(secret))
		return false
	}
	return hmac.Equal(want, []byte(secret))
}

// Issue signs a token for c valid for ttl, with the key id in the "kid"
// header. c.ExpiresAt, c.IssuedAt and c.KeyID are ignored.
func (k *KeySet) Issue(keyID string, c Claims, ttl time.Duration) (string, error) {
	secret, ok := k.keys[keyID]
	if !ok {
		return "", fmt.Errorf("issue token: unknown API key %q", keyID)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("issue token: ttl must be positive, got %s", ttl)
	}
	if c.Identity == "" {
		return "", errors.New("issue token: identity is required")
	}
	if c.Room == "" && !c.Grants.Chat {
		// An empty room is a messaging-only session (docs/protocol.md,
		// Sessions), which is pointless without the chat grant.
		return "", errors.New("issue token: room is required (or the chat grant for a messaging-only token)")
	}
	if c.Room == AllRooms && !c.Grants.Admin {
		return "", errors.New("issue token: room \"*\" needs the admin grant")
	}
	now := k.now().Truncate(time.Second)
	jc := jwtClaims{
		Name:   c.Name,
		Room:   c.Room,
		Grants: c.Grants,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    keyID,
			Subject:   c.Identity,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jc)
	tok.Header["kid"] = keyID
	s, err := tok.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("issue token: sign: %w", err)
	}
	return s, nil
}

// Verify checks the token's algorithm (HS256 only), key id, signature,
// expiry and not-before time, and returns its claims. Errors wrap
// ErrExpired or ErrInvalid.
func (k *KeySet) Verify(token string) (Claims, error) {
	if token == "" || len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: empty or oversized", ErrInvalid)
	}
	var kid string
	keyFunc := func(t *jwt.Token) (any, error) {
		id, _ := t.Header["kid"].(string)
		secret, ok := k.keys[id]
		if !ok {
			return nil, errors.New("unknown key id")
		}
		kid = id
		return secret, nil
	}
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, keyFunc,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(k.now),
	)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fmt.Errorf("%w", ErrExpired)
		}
		// jwt's messages describe the check that failed, never the token.
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if jc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: identity is required", ErrInvalid)
	}
	if jc.Room == "" && !jc.Grants.Chat {
		return Claims{}, fmt.Errorf("%w: room is required unless the token has the chat grant", ErrInvalid)
	}
	if jc.Room == AllRooms && !jc.Grants.Admin {
		return Claims{}, fmt.Errorf("%w: room \"*\" without admin grant", ErrInvalid)
	}
	c := Claims{
		Identity:  jc.Subject,
		Name:      jc.Name,
		Room:      jc.Room,
		Grants:    jc.Grants,
		ExpiresAt: jc.ExpiresAt.Time,
		KeyID:     kid,
	}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.Time
	}
	return c, nil
}

// ParseGrants turns names ("publish", "subscribe", "chat", "admin",
// "moderate") into
// Grants; an unknown name is an error, duplicates are harmless.
func ParseGrants(list []string) (Grants, error) {
	var g Grants
	for _, name := range list {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "publish":
			g.Publish = true
		case "subscribe":
			g.Subscribe = true
		case "chat":
			g.Chat = true
		case "admin":
			g.Admin = true
		case "moderate":
			g.Moderate = true
		default:
			return Grants{}, fmt.Errorf("unknown grant %q (want publish, subscribe, chat, admin or moderate)", name)
		}
	}
	return g, nil
}

// GenerateKey makes a random API key for dev mode: an id "PK_..." and a
// 32-byte random secret encoded as 52 base32 characters.
func GenerateKey() (keyID, secret string, err error) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	idBytes := make([]byte, 8)
	secretBytes := make([]byte, 32)
	if _, err := rand.Read(idBytes); err != nil {
		return "", "", fmt.Errorf("generate key id: %w", err)
	}
	if _, err := rand.Read(secretBytes); err != nil {
		return "", "", fmt.Errorf("generate key secret: %w", err)
	}
	return "PK_" + enc.EncodeToString(idBytes), enc.EncodeToString(secretBytes), nil
}
