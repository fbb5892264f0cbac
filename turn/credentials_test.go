package turn

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

const (
	testSecret  = "north-wind-secret-1"
	testSecret2 = "south-wind-secret-2"
	testRealm   = "parley.test"
)

func TestRESTCredentialsFormat(t *testing.T) {
	u, p := RESTCredentials(testSecret, "alice", time.Hour, time.Unix(1699996400, 0))
	if u != "1700000000:alice" {
		t.Fatalf("username %q", u)
	}
	// Computed independently with Python's hmac module.
	if p != "iDJGfH39JG6kTCUKWlIEyNKCYnk=" {
		t.Fatalf("password %q", p)
	}
}

// TestRESTCredentialsAgreeWithPion checks our credential against pion's own
// TURN REST verifier, an implementation we did not write.
func TestRESTCredentialsAgreeWithPion(t *testing.T) {
	u, p := RESTCredentials(testSecret, "bob", time.Hour, time.Now())
	h := pionturn.LongTermTURNRESTAuthHandler(testSecret, logging.NewDefaultLoggerFactory().NewLogger("t"))
	user, key, ok := h(&pionturn.RequestAttributes{Username: u, Realm: testRealm, SrcAddr: &net.UDPAddr{}})
	if !ok || user != "bob" {
		t.Fatalf("pion refused: %v %q", ok, user)
	}
	if !bytes.Equal(key, pionturn.GenerateAuthKey(u, testRealm, p)) {
		t.Fatal("pion derives a different key from our password")
	}
}

type failRec struct{ reasons []string }

func (f *failRec) fail(reason, _ string, _ net.Addr) { f.reasons = append(f.reasons, reason) }

func newTestAuth(secrets []string, now time.Time) (*authenticator, *failRec) {
	cfg := DefaultConfig()
	cfg.Realm = testRealm
	cfg.SharedSecrets = secrets
	cfg.Users = map[string]string{"static": "static-password"}
	rec := &failRec{}

	return newAuthenticator(cfg, func() time.Time { return now }, rec.fail), rec
}

// signedAllocate builds a request with MESSAGE-INTEGRITY as a client holding
// (username, password) would.
func signedAllocate(t *testing.T, username, password string) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.NewUsername(username), stun.NewRealm(testRealm), stun.NewNonce("n"),
		stun.NewLongTermIntegrity(username, testRealm, password), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}

	return m.Raw
}

func TestAuthenticator(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}
	ra := func(u string) *pionturn.RequestAttributes {
		return &pionturn.RequestAttributes{Username: u, Realm: testRealm, SrcAddr: src}
	}

	t.Run("valid", func(t *testing.T) {
		a, rec := newTestAuth([]string{testSecret}, now)
		u, p := RESTCredentials(testSecret, "alice", time.Hour, now)
		user, key, ok := a.handle(ra(u))
		if !ok || user != "alice" || !bytes.Equal(key, pionturn.GenerateAuthKey(u, testRealm, p)) {
			t.Fatalf("valid credential: ok=%v user=%q", ok, user)
		}
		if len(rec.reasons) != 0 {
			t.Fatalf("failures recorded: %v", rec.reasons)
		}
	})
	t.Run("expired", func(t *testing.T) {
		a, rec := newTestAuth([]string{testSecret}, now)
		u, _ := RESTCredentials(testSecret, "alice", -time.Second, now)
		if _, _, ok := a.handle(ra(u)); ok {
			t.Fatal("expired credential accepted")
		}
		if len(rec.reasons) != 1 || rec.reasons[0] != authExpired {
			t.Fatalf("reasons %v", rec.reasons)
		}
	})
	t.Run("malformed and realm", func(t *testing.T) {
		a, rec := newTestAuth([]string{testSecret}, now)
		for _, u := range []string{"alice", ":alice", "1800003600:", "abc:alice", "-5:alice"} {
			if _, _, ok := a.handle(ra(u)); ok {
				t.Errorf("%q accepted", u)
			}
		}
		u, _ := RESTCredentials(testSecret, "alice", time.Hour, now)
		if _, _, ok := a.handle(&pionturn.RequestAttributes{Username: u, Realm: "other", SrcAddr: src}); ok {
			t.Error("wrong realm accepted")
		}
		if got := strings.Join(rec.reasons, ","); got != "malformed_username,malformed_username,malformed_username,malformed_username,malformed_username,wrong_realm" {
			t.Errorf("reasons %s", got)
		}
	})
	t.Run("static user", func(t *testing.T) {
		a, _ := newTestAuth([]string{testSecret}, now)
		user, key, ok := a.handle(ra("static"))
		if !ok || user != "static" || !bytes.Equal(key, pionturn.GenerateAuthKey("static", testRealm, "static-password")) {
			t.Fatal("static user refused")
		}
	})
	t.Run("rotated secret", func(t *testing.T) {
		a, _ := newTestAuth([]string{testSecret2, testSecret}, now)
		u, p := RESTCredentials(testSecret, "carol", time.Hour, now) // signed with the older secret
		a.learn(signedAllocate(t, u, p))
		_, key, ok := a.handle(ra(u))
		if !ok || !bytes.Equal(key, pionturn.GenerateAuthKey(u, testRealm, p)) {
			t.Fatal("credential of the second secret not recognised")
		}
	})
	t.Run("wrong hmac is not learned", func(t *testing.T) {
		a, _ := newTestAuth([]string{testSecret2, testSecret}, now)
		u, _ := RESTCredentials("some-other-secret-xx", "mallory", time.Hour, now)
		_, p := RESTCredentials(testSecret, "mallory", time.Hour, now)
		a.learn(signedAllocate(t, u, "forged"+p))
		if len(a.learned) != 0 {
			t.Fatal("forged credential cached")
		}
		// pion's integrity check then fails with the first secret's key.
		_, key, ok := a.handle(ra(u))
		if !ok || bytes.Equal(key, pionturn.GenerateAuthKey(u, testRealm, "forged"+p)) {
			t.Fatal("unexpected key for an unknown credential")
		}
	})
}

func TestParseRESTUsername(t *testing.T) {
	exp, user, ok := parseRESTUsername("1700000000:a:b")
	if !ok || user != "a:b" || exp.Unix() != 1700000000 {
		t.Fatalf("got %v %q %v", exp, user, ok)
	}
}
