package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // TURN REST credentials are defined with HMAC-SHA1.
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// RESTCredentials makes a TURN REST credential (the scheme coturn calls
// use-auth-secret): the username is "<expiry unix seconds>:<user>" and the
// password is base64(HMAC-SHA1(secret, username)). Any server holding the
// secret can check it without storing anything.
func RESTCredentials(secret, user string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + user

	return username, restPassword(secret, username)
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // hash.Hash.Write never fails

	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseRESTUsername splits "<expiry>:<user>". The user part may itself
// contain colons; an empty user is refused so quotas always have a key.
func parseRESTUsername(username string) (expiry time.Time, user string, ok bool) {
	ts, user, found := strings.Cut(username, ":")
	if !found || user == "" || ts == "" || len(ts) > 12 {
		return time.Time{}, "", false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, "", false
	}

	return time.Unix(sec, 0), user, true
}
