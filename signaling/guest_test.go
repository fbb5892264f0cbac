package signaling

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// TestDevGuestCredential: a guest gets its identity back with the
// credential of an earlier reply, and only with that one.
func TestDevGuestCredential(t *testing.T) {
	env := startServer(t, func(c *Config) { c.DevMode = true })
	ask := func(guest string) (identity, cred string) {
		t.Helper()
		body, _ := json.Marshal(devTokenRequest{Room: "standup", Name: "Ada", Guest: guest})
		code, raw := env.do(httpReq{method: "POST", path: "/api/dev/token", body: string(body), origin: env.base})
		if code != 200 {
			t.Fatalf("status %d %s", code, raw)
		}
		var r devTokenReply
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		c, err := env.keys.Verify(r.Token)
		if err != nil {
			t.Fatal(err)
		}
		return c.Identity, r.Guest
	}
	id, cred := ask("")
	if !strings.HasPrefix(cred, id+".") {
		t.Fatalf("credential %q does not carry identity %q", cred, id)
	}
	if again, _ := ask(cred); again != id {
		t.Errorf("with its credential the guest got %q, want %q", again, id)
	}
	other, _ := ask("")
	if other == id {
		t.Fatal("two guests got one identity")
	}
	// Claiming someone else's identity: the MAC of one identity does not
	// vouch for another, and a made-up one gets a fresh identity.
	_, mac, _ := strings.Cut(cred, ".")
	for _, forged := range []string{other + "." + mac, "guest-admin." + mac, "alice", id, id + ".", cred + "x"} {
		if got, _ := ask(forged); got == other || got == id || got == "alice" || got == "guest-admin" {
			t.Errorf("forged credential %q gave identity %q", forged, got)
		}
	}
}

// TestDevTokenRoomRule: a bad room name is refused with the rule in words.
func TestDevTokenRoomRule(t *testing.T) {
	env := startServer(t, func(c *Config) { c.DevMode = true })
	code, raw := env.do(httpReq{method: "POST", path: "/api/dev/token", body: `{"room":"team.standup"}`, origin: env.base})
	if code != 400 || !strings.Contains(string(raw), rooms.NameRule) {
		t.Fatalf("status %d %s, want 400 with %q", code, raw, rooms.NameRule)
	}
}

// TestChatUnknownIdentityRefused: a direct chat or a group with someone
// nobody has used here is refused with not_found naming them; joining,
// a token from the admin API, or a shared conversation makes them known.
func TestChatUnknownIdentityRefused(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	refused := func(typ, id string, body any) {
		t.Helper()
		alice.send(typ, id, body)
		m := alice.waitRe(id)
		if m.Type != proto.TypeError || !strings.Contains(string(m.Data), "not_found") || !strings.Contains(string(m.Data), "ghost") {
			t.Fatalf("%s with ghost answered %s %s", typ, m.Type, m.Data)
		}
	}
	refused(proto.TypeChatDirect, "d1", proto.ChatDirectBody{Identity: "ghost"})
	refused(proto.TypeChatGroup, "g1", proto.ChatGroupBody{Title: "T", Members: []string{"bob", "ghost"}})

	// Issued a token by the operator: known before connecting.
	if code, body := env.admin("POST", "/api/admin/tokens", `{"identity":"ghost","grants":["chat"]}`); code != 200 {
		t.Fatalf("admin token: %d %s", code, body)
	}
	if conv := alice.direct("ghost"); conv.Peer != "ghost" {
		t.Fatalf("direct with ghost after a token was issued: %+v", conv)
	}
	// Joined once: known.
	env.joinMessaging("zed")
	if conv := alice.direct("zed"); conv.Peer != "zed" {
		t.Fatalf("direct with zed after a join: %+v", conv)
	}
}

// TestChatKnownSurvivesRestart: who has used the server is kept in the
// chat store, so a server started afresh on the same store (a restart, or
// another node) can message them before they reconnect.
func TestChatKnownSurvivesRestart(t *testing.T) {
	env := startChatServer(t, nil, nil)
	if code, body := env.admin("POST", "/api/admin/tokens", `{"identity":"ghost","grants":["chat"]}`); code != 200 {
		t.Fatalf("admin token: %d %s", code, body)
	}
	env.joinMessaging("zed")

	// A fresh server with an empty cache over the same store.
	next := &chatEnv{testEnv: startServerWith(t, nil, env.svc), svc: env.svc}
	if next.srv.seen.has("zed") || next.srv.seen.has("ghost") {
		t.Fatal("the new server's cache is not empty")
	}
	alice := next.joinMessaging("alice")
	for _, id := range []string{"ghost", "zed"} {
		if conv := alice.direct(id); conv.Peer != id {
			t.Fatalf("direct with %s after a restart: %+v", id, conv)
		}
	}
	alice.send(proto.TypeChatDirect, "d1", proto.ChatDirectBody{Identity: "nobody"})
	if m := alice.waitRe("d1"); m.Type != proto.TypeError || !strings.Contains(string(m.Data), "not_found") {
		t.Fatalf("direct with nobody after a restart answered %s %s", m.Type, m.Data)
	}
}

// TestDevChatToken: an empty room asks for a messaging-only guest token
// (the /chat page in dev mode): chat grant only, no room, and the same
// guest identity as the browser's call tokens.
func TestDevChatToken(t *testing.T) {
	env := startServer(t, func(c *Config) { c.DevMode = true })
	mint := func(room, guest string) (auth.Claims, string) {
		t.Helper()
		body, _ := json.Marshal(devTokenRequest{Room: room, Name: "Ada", Guest: guest})
		code, raw := env.do(httpReq{method: "POST", path: "/api/dev/token", body: string(body), origin: env.base})
		if code != 200 {
			t.Fatalf("room %q: status %d %s", room, code, raw)
		}
		var r devTokenReply
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		c, err := env.keys.Verify(r.Token)
		if err != nil {
			t.Fatal(err)
		}
		return c, r.Guest
	}
	call, guest := mint("standup", "")
	chat, _ := mint("", guest)
	if chat.Room != "" || chat.Grants != (auth.Grants{Chat: true}) {
		t.Errorf("chat token: room %q grants %+v, want no room and the chat grant only", chat.Room, chat.Grants)
	}
	if chat.Identity != call.Identity || chat.Name != "Ada" {
		t.Errorf("chat token for %q (%q), want the guest's identity %q", chat.Identity, chat.Name, call.Identity)
	}
}
