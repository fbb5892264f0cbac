package signaling

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// Tokens do not grow (issue #17, finding 9): the token refreshed for a
// room session never carries more than the room session needs (no admin
// grant, so it does not open the admin API), and once the admin API
// removed a participant, nothing issued to it for that room before the
// removal (its refreshed tokens included) joins again.
func TestRefreshedTokensDoNotGrow(t *testing.T) {
	env := startServer(t, nil)
	short, err := env.keys.Issue(testKeyID, auth.Claims{Identity: "ada", Room: "r",
		Grants: auth.Grants{Publish: true, Subscribe: true, Admin: true}}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := env.do(httpReq{method: "GET", path: "/api/admin/rooms/r/participants", bearer: short}); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("the original admin token is refused by the admin API: %d %s", code, body)
	}
	ada := env.mustDial()
	ada.send("join", "1", proto.JoinBody{Token: short, Protocol: 1})
	ada.expect("joined")
	var tb proto.TokenBody
	ada.expect("token").decode(t, &tb)
	claims, err := env.keys.Verify(tb.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Grants.Admin || !claims.Grants.Publish || !claims.Grants.Subscribe || claims.Grants.Chat {
		t.Errorf("refreshed grants %+v; want the original's minus admin", claims.Grants)
	}
	if code, _ := env.do(httpReq{method: "GET", path: "/api/admin/rooms/r/participants", bearer: tb.Token}); code != http.StatusForbidden {
		t.Errorf("the refreshed token opens the admin API: %d", code)
	}

	if code, body := env.admin("DELETE", "/api/admin/rooms/r/participants/ada", ""); code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", code, body)
	}
	removedAt := time.Now()
	ada.expectBye(proto.ByeRemoved)
	for _, tok := range []string{tb.Token, short} { // the refreshed token, the original
		again := env.mustDial()
		again.send("join", "2", proto.JoinBody{Token: tok, Protocol: 1})
		again.expectError(proto.CodeUnauthorized)
		again.expectClose(websocket.ClosePolicyViolation)
	}
	// Others still join, and so does ada with a token issued after the
	// removal (tokens carry whole seconds).
	env.join("bob", "r", allGrants)
	time.Sleep(time.Until(removedAt.Truncate(time.Second).Add(time.Second)))
	env.join("ada", "r", allGrants)
}
