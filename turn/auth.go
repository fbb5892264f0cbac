package turn

import (
	"net"
	"sync"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

// Auth failure reasons, used as the "reason" label of
// parley_turn_auth_failures_total.
const (
	authMalformed     = "malformed_username"
	authExpired       = "expired"
	authUnknownUser   = "unknown_user"
	authWrongRealm    = "wrong_realm"
	authBadCredential = "bad_credential"
)

// maxLearnedKeys bounds the rotation cache. Only credentials whose HMAC
// verified enter it, so an attacker without a secret cannot grow it.
const maxLearnedKeys = 1 << 16

// authenticator answers pion's AuthHandler: it returns the long-term key
// MD5(username:realm:password) for a username. pion then checks the
// request's MESSAGE-INTEGRITY with that key.
//
// pion's AuthHandler sees the username but not the message, so it can hand
// back only one key. With several shared secrets (rotation) the right one is
// the secret the client's credential was made with; learn() finds it by
// checking the raw request against each secret before pion handles it, and
// remembers the answer per username.
type authenticator struct {
	realm   string
	secrets []string
	users   map[string][]byte
	now     func() time.Time
	fail    func(reason, username string, src net.Addr)

	mu      sync.Mutex
	learned map[string]learnedKey
}

type learnedKey struct {
	key    []byte
	expiry time.Time
}

func newAuthenticator(cfg Config, now func() time.Time, fail func(reason, username string, src net.Addr)) *authenticator {
	a := &authenticator{
		realm:   cfg.Realm,
		secrets: append([]string(nil), cfg.SharedSecrets...),
		users:   make(map[string][]byte, len(cfg.Users)),
		now:     now,
		fail:    fail,
		learned: make(map[string]learnedKey),
	}
	for name, pw := range cfg.Users {
		a.users[name] = pionturn.GenerateAuthKey(name, cfg.Realm, pw)
	}

	return a
}

// handle implements pion's AuthHandler. The returned user id (the part
// after the colon for REST credentials) is what quotas count.
func (a *authenticator) handle(ra *pionturn.RequestAttributes) (userID string, key []byte, ok bool) {
	if ra.Realm != a.realm {
		a.fail(authWrongRealm, ra.Username, ra.SrcAddr)

		return "", nil, false
	}
	if k, found := a.users[ra.Username]; found {
		return ra.Username, k, true
	}
	expiry, user, parsed := parseRESTUsername(ra.Username)
	switch {
	case !parsed && len(a.secrets) > 0:
		a.fail(authMalformed, ra.Username, ra.SrcAddr)

		return "", nil, false
	case !parsed || len(a.secrets) == 0:
		a.fail(authUnknownUser, ra.Username, ra.SrcAddr)

		return "", nil, false
	case !a.now().Before(expiry):
		a.fail(authExpired, ra.Username, ra.SrcAddr)

		return "", nil, false
	}
	if len(a.secrets) > 1 {
		a.mu.Lock()
		lk, found := a.learned[ra.Username]
		a.mu.Unlock()
		if found {
			return user, lk.key, true
		}
	}
	// One secret, or a credential learn() could not match: pion's integrity
	// check decides (and reports a failure through OnAuth).
	return user, a.keyFor(a.secrets[0], ra.Username), true
}

// keyOf is the key handle would give pion for username, without counting
// a failure: for signing an answer the server rewrites (forbidden.go) to a
// request pion already authenticated.
func (a *authenticator) keyOf(username string) ([]byte, bool) {
	if k, found := a.users[username]; found {
		return k, true
	}
	if _, _, parsed := parseRESTUsername(username); !parsed || len(a.secrets) == 0 {
		return nil, false
	}
	if len(a.secrets) > 1 {
		a.mu.Lock()
		lk, found := a.learned[username]
		a.mu.Unlock()

		return lk.key, found
	}

	return a.keyFor(a.secrets[0], username), true
}

func (a *authenticator) keyFor(secret, username string) []byte {
	return pionturn.GenerateAuthKey(username, a.realm, restPassword(secret, username))
}

// wantsRaw reports whether learn needs to see requests at all.
func (a *authenticator) wantsRaw() bool { return len(a.secrets) > 1 }

// learn inspects one raw STUN request before pion handles it and, if its
// MESSAGE-INTEGRITY verifies with one of the shared secrets, remembers the
// key for its username. It never retains raw.
func (a *authenticator) learn(raw []byte) {
	if !stun.IsMessage(raw) {
		return
	}
	if m := (&stun.Message{Raw: raw}); m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) {
		return // unsigned: nothing to learn (Decode only reads raw)
	}
	// Check() rewrites the length field while it hashes, so work on a copy:
	// pion parses the original buffer next.
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if m.Decode() != nil {
		return
	}
	var uname stun.Username
	var realm stun.Realm
	if uname.GetFrom(m) != nil || realm.GetFrom(m) != nil || realm.String() != a.realm {
		return
	}
	username := uname.String()
	expiry, _, ok := parseRESTUsername(username)
	now := a.now()
	if !ok || !now.Before(expiry) {
		return
	}
	a.mu.Lock()
	cached, known := a.learned[username]
	a.mu.Unlock()
	if known && stun.MessageIntegrity(cached.key).Check(m) == nil {
		return
	}
	// Unknown, or the same username signed with another secret (two issuers
	// minting for one user in the same second during a rotation).
	for _, s := range a.secrets {
		key := a.keyFor(s, username)
		if stun.MessageIntegrity(key).Check(m) != nil {
			continue
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.learned) >= maxLearnedKeys {
			a.evict(now)
		}
		a.learned[username] = learnedKey{key: key, expiry: expiry}

		return
	}
}

// evict makes room in a full cache: expired entries first, else an
// arbitrary one. Losing a live entry is harmless because learn runs on
// every signed request and relearns it. Callers hold a.mu.
func (a *authenticator) evict(now time.Time) {
	for u, lk := range a.learned {
		if !now.Before(lk.expiry) {
			delete(a.learned, u)
		}
	}
	for u := range a.learned {
		if len(a.learned) < maxLearnedKeys {
			return
		}
		delete(a.learned, u)
	}
}
