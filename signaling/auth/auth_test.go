package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testSecret  = "0123456789abcdef0123456789abcdef"
	otherSecret = "fedcba9876543210fedcba9876543210"
)

func testKeys(t testing.TB) *KeySet {
	t.Helper()
	ks, err := NewKeySet(map[string]string{"k1": testSecret, "k2": otherSecret})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestNewKeySet(t *testing.T) {
	tests := []struct {
		name string
		keys map[string]string
		ok   bool
	}{
		{"valid", map[string]string{"k1": testSecret}, true},
		{"empty", map[string]string{}, false},
		{"short secret", map[string]string{"k1": "short"}, false},
		{"bad id", map[string]string{"k 1": testSecret}, false},
		{"empty id", map[string]string{"": testSecret}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKeySet(tc.keys)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "short") && strings.Contains(err.Error(), testSecret) {
				t.Fatal("error leaks the secret")
			}
		})
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	ks := testKeys(t)
	in := Claims{Identity: "ada", Name: "Ada", Room: "standup", Grants: Grants{Publish: true, Chat: true}}
	tok, err := ks.Issue("k2", in, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ks.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity != "ada" || got.Name != "Ada" || got.Room != "standup" || got.Grants != in.Grants || got.KeyID != "k2" {
		t.Fatalf("claims = %+v", got)
	}
	if d := time.Until(got.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("expiry in %s, want ~1h", d)
	}
	if got.IssuedAt.IsZero() {
		t.Fatal("IssuedAt not set")
	}
}

func TestIssueRejects(t *testing.T) {
	ks := testKeys(t)
	good := Claims{Identity: "ada", Room: "r"}
	tests := []struct {
		name  string
		keyID string
		c     Claims
		ttl   time.Duration
	}{
		{"unknown key", "nope", good, time.Hour},
		{"zero ttl", "k1", good, 0},
		{"no identity", "k1", Claims{Room: "r"}, time.Hour},
		{"no room", "k1", Claims{Identity: "a"}, time.Hour},
		{"all rooms without admin", "k1", Claims{Identity: "a", Room: AllRooms}, time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ks.Issue(tc.keyID, tc.c, tc.ttl); err == nil {
				t.Fatal("Issue succeeded, want error")
			}
		})
	}
}

// sign builds a token by hand so tests can craft what Issue refuses to.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	ks := testKeys(t)
	now := time.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{
			"sub": "ada", "room": "standup", "grants": map[string]bool{"publish": true},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
	}
	with := func(k string, v any) jwt.MapClaims { c := base(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := base(); delete(c, k); return c }
	valid, err := ks.Issue("k1", Claims{Identity: "ada", Room: "standup"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		want  error // nil means valid
	}{
		{"valid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", base()), nil},
		{"within leeway after exp", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", with("exp", now.Add(-2*time.Second).Unix())), nil},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", with("exp", now.Add(-time.Minute).Unix())), ErrExpired},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", with("nbf", now.Add(time.Minute).Unix())), ErrInvalid},
		{"issued in future", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", with("iat", now.Add(time.Minute).Unix())), ErrInvalid},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", without("exp")), ErrInvalid},
		{"no subject", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", without("sub")), ErrInvalid},
		{"no room", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", without("room")), ErrInvalid},
		{"wildcard room without admin", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k1", with("room", "*")), ErrInvalid},
		{"wrong secret for kid", sign(t, jwt.SigningMethodHS256, []byte(otherSecret), "k1", base()), ErrInvalid},
		{"unknown kid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "k9", base()), ErrInvalid},
		{"no kid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", base()), ErrInvalid},
		{"HS512 refused", sign(t, jwt.SigningMethodHS512, []byte(testSecret), "k1", base()), ErrInvalid},
		{"alg none refused", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", base()), ErrInvalid},
		{"tampered payload", parts[0] + "." + parts[1] + "x." + parts[2], ErrInvalid},
		{"truncated", parts[0] + "." + parts[1], ErrInvalid},
		{"empty", "", ErrInvalid},
		{"garbage", "not-a-token", ErrInvalid},
		{"oversized", strings.Repeat("a", maxTokenBytes+1), ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ks.Verify(tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Identity != "ada" || c.KeyID != "k1" {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Fatal("error message contains the token")
			}
		})
	}
}

func TestVerifyExpiryWithClock(t *testing.T) {
	ks := testKeys(t)
	tok, err := ks.Issue("k1", Claims{Identity: "a", Room: "r"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ks.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := ks.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("err = %v, want ErrExpired", err)
	}
}

func TestAdminWildcard(t *testing.T) {
	ks := testKeys(t)
	tok, err := ks.Issue("k1", Claims{Identity: "ops", Room: AllRooms, Grants: Grants{Admin: true}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ks.Verify(tok)
	if err != nil || c.Room != AllRooms || !c.Grants.Admin {
		t.Fatalf("claims = %+v, err = %v", c, err)
	}
}

func TestCheckSecret(t *testing.T) {
	ks := testKeys(t)
	tests := []struct {
		id, secret string
		want       bool
	}{
		{"k1", testSecret, true},
		{"k1", otherSecret, false},
		{"k2", otherSecret, true},
		{"k9", testSecret, false},
		{"k1", "", false},
	}
	for _, tc := range tests {
		if got := ks.CheckSecret(tc.id, tc.secret); got != tc.want {
			t.Errorf("CheckSecret(%q, ...) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if ks.DefaultKeyID() != "k1" {
		t.Errorf("DefaultKeyID = %q", ks.DefaultKeyID())
	}
}

func TestParseGrants(t *testing.T) {
	tests := []struct {
		in   []string
		want Grants
		ok   bool
	}{
		{nil, Grants{}, true},
		{[]string{"publish", "subscribe"}, Grants{Publish: true, Subscribe: true}, true},
		{[]string{"chat", "admin", "chat"}, Grants{Chat: true, Admin: true}, true},
		{[]string{" Publish "}, Grants{Publish: true}, true},
		{[]string{"publish", "root"}, Grants{}, false},
		{[]string{"moderate", "publish"}, Grants{Moderate: true, Publish: true}, true},
	}
	for _, tc := range tests {
		got, err := ParseGrants(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseGrants(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// TestModerateGrantRoundTrip: the moderate grant survives signing and
// verification, and a token without it verifies without it.
func TestModerateGrantRoundTrip(t *testing.T) {
	ks, err := NewKeySet(map[string]string{"k": "0123456789abcdef0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []bool{true, false} {
		tok, err := ks.Issue("k", Claims{Identity: "host", Room: "r", Grants: Grants{Publish: true, Moderate: want}}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ks.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if c.Grants.Moderate != want || !c.Grants.Publish {
			t.Fatalf("moderate=%v: verified grants %+v", want, c.Grants)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	id1, s1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id2, s2, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if id1 == id2 || s1 == s2 {
		t.Fatal("generated keys repeat")
	}
	ks, err := NewKeySet(map[string]string{id1: s1})
	if err != nil {
		t.Fatalf("generated key not accepted: %v", err)
	}
	tok, err := ks.Issue(id1, Claims{Identity: "g", Room: "r"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(tok); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	ks, err := NewKeySet(map[string]string{"k1": testSecret})
	if err != nil {
		f.Fatal(err)
	}
	good, err := ks.Issue("k1", Claims{Identity: "ada", Room: "r", Grants: Grants{Publish: true}}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ks.Verify(tok)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		// Anything accepted must be a fully formed token.
		if c.Identity == "" || c.Room == "" || c.KeyID != "k1" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted incomplete claims %+v", c)
		}
	})
}
