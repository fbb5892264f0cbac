package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A token without a room is a messaging-only token; it must carry the
// chat grant, both when issued and when verified.
func TestMessagingOnlyTokens(t *testing.T) {
	ks := testKeys(t)
	tok, err := ks.Issue("k1", Claims{Identity: "ada", Grants: Grants{Chat: true}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ks.Verify(tok)
	if err != nil || c.Room != "" || !c.Grants.Chat || c.Identity != "ada" {
		t.Fatalf("claims %+v err %v", c, err)
	}
	if _, err := ks.Issue("k1", Claims{Identity: "ada", Grants: Grants{Publish: true, Subscribe: true}}, time.Minute); err == nil {
		t.Fatal("issued a room-less token without the chat grant")
	}
	now := time.Now()
	claims := func(grants map[string]bool) jwt.MapClaims {
		return jwt.MapClaims{"sub": "ada", "grants": grants, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	if _, err := ks.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", claims(map[string]bool{"chat": true}))); err != nil {
		t.Fatalf("room-less chat token refused: %v", err)
	}
	noChat := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", claims(map[string]bool{"publish": true}))
	if _, err := ks.Verify(noChat); !errors.Is(err, ErrInvalid) {
		t.Fatalf("room-less token without chat verified: %v", err)
	}
}
