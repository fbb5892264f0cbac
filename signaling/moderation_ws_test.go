package signaling

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

var hostGrants = auth.Grants{Publish: true, Subscribe: true, Moderate: true}

// knock connects and joins a room that holds the joiner in its lobby,
// returning the client and its "lobby" body.
func (e *testEnv) knock(identity, room string, g auth.Grants) (*client, proto.LobbyBody) {
	e.t.Helper()
	c := e.mustDial()
	c.send("join", "j", proto.JoinBody{Token: e.token(identity, room, g), Protocol: 1})
	m := c.expect("lobby")
	if m.Re != "j" {
		e.t.Fatalf("lobby re = %q", m.Re)
	}
	var lb proto.LobbyBody
	m.decode(e.t, &lb)
	if lb.Status != proto.LobbyWaiting || lb.LobbyID == "" || lb.ExpiresInMs <= 0 {
		e.t.Fatalf("lobby %+v", lb)
	}
	return c, lb
}

// joinHost joins a moderator and waits until the server has finished its
// join (the reader answers one request after another), so a knock that
// follows reaches it once.
func (e *testEnv) joinHost(identity, room string) (*client, proto.JoinedBody) {
	e.t.Helper()
	c, jb := e.join(identity, room, hostGrants)
	c.sendRaw([]byte(`{"type":"sync_probe","id":"sync"}`))
	c.expectError(proto.CodeUnknownType)
	return c, jb
}

func (e *testEnv) mediaJoins() int {
	e.media.mu.Lock()
	defer e.media.mu.Unlock()
	return e.media.joins
}

// setSettings sends room_settings from c and reads the push that answers it.
func setSettings(t *testing.T, c *client, body string) proto.RoomSettingsPush {
	t.Helper()
	c.sendRaw([]byte(`{"type":"room_settings","id":"s","data":` + body + `}`))
	var push proto.RoomSettingsPush
	skipTo(c, "room_settings").decode(t, &push)
	return push
}

// skipTo reads c's messages until one of type typ.
func skipTo(c *client, typ string) msg {
	c.t.Helper()
	for {
		m, err := c.next(false)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

func TestLobbyKnockAdmitDeny(t *testing.T) {
	env := startServer(t, nil)
	host, hj := env.joinHost("host", "r")
	if !hj.Participant.Moderator || hj.Settings == nil || hj.Settings.Lobby || hj.Settings.ScreenShare != "everyone" {
		t.Fatalf("host joined %+v settings %+v", hj.Participant, hj.Settings)
	}
	push := setSettings(t, host, `{"lobby":true}`)
	if !push.Settings.Lobby || push.By.Identity != "host" {
		t.Fatalf("push %+v", push)
	}
	joinsBefore := env.mediaJoins()

	bob, lb := env.knock("bob", "r", allGrants)
	var knock proto.LobbyKnockBody
	host.expect("lobby_knock").decode(t, &knock)
	if knock.LobbyID != lb.LobbyID || knock.Identity != "bob" || knock.Name != "Bob" || knock.ExpiresAt <= time.Now().UnixMilli() {
		t.Fatalf("knock %+v", knock)
	}
	// Waiting: no media session, and nothing bob sends reaches the room.
	bob.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t", Kind: "video", Source: "camera"}}})
	if eb := bob.expectError(proto.CodeForbidden); !strings.Contains(eb.Message, "lobby") {
		t.Fatalf("refusal %+v", eb)
	}
	bob.send("pong", "", proto.PingBody{TS: 1})
	if env.mediaJoins() != joinsBefore || env.srv.dir.Lookup("r", "bob") != nil {
		t.Fatal("a waiting joiner got media or a place in the room")
	}
	// Leaving the lobby tells the moderators.
	bob.send("leave", "", nil)
	bob.expectBye(proto.ByeLeft)
	var left proto.LobbyLeftBody
	host.expect("lobby_left").decode(t, &left)
	if left.Reason != proto.LobbyGone || left.Identity != "bob" {
		t.Fatalf("lobby_left %+v", left)
	}
}

func TestLobbyAdmitDenyAdmitAll(t *testing.T) {
	env := startServer(t, func(c *Config) { c.LobbyByDefault = true })
	host, _ := env.joinHost("host", "r")
	bob, lb := env.knock("bob", "r", allGrants)
	host.expect("lobby_knock")

	host.send("lobby_admit", "a", proto.LobbyRefBody{LobbyID: lb.LobbyID})
	var left proto.LobbyLeftBody
	skipTo(host, "lobby_left").decode(t, &left) // a knock may come twice
	if left.LobbyID != lb.LobbyID || left.Reason != proto.LobbyAdmitted {
		t.Fatalf("lobby_left %+v", left)
	}
	m := bob.expect("joined")
	if m.Re != "j" {
		t.Fatalf("admitted joined re %q", m.Re)
	}
	host.expect("participant_joined")
	// Admitted, bob is an ordinary participant now.
	bob.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t", Kind: "video", Source: "camera"}}})
	bob.expect("published")
	// Deciding the same entry twice: not_found.
	host.send("lobby_deny", "d", proto.LobbyRefBody{LobbyID: lb.LobbyID})
	host.expectError(proto.CodeNotFound)

	// Deny.
	carol, cl := env.knock("carol", "r", allGrants)
	host.expect("lobby_knock")
	host.send("lobby_deny", "d", proto.LobbyRefBody{LobbyID: cl.LobbyID})
	var st proto.LobbyBody
	carol.expect("lobby").decode(t, &st)
	if st.Status != proto.LobbyDenied {
		t.Fatalf("carol told %+v", st)
	}
	carol.expectBye(proto.ByeDenied)
	carol.expectClose(websocket.CloseNormalClosure)
	host.expect("lobby_left")

	// Admit all; a moderator joining later is shown who waits.
	dan, _ := env.knock("dan", "r", allGrants)
	eve, _ := env.knock("eve", "r", allGrants)
	host.expect("lobby_knock")
	host.expect("lobby_knock")
	host2, _ := env.join("host2", "r", hostGrants)
	host2.expect("lobby_knock")
	host2.expect("lobby_knock")
	host2.send("lobby_admit_all", "aa", nil)
	dan.expect("joined")
	eve.expect("joined")
}

func TestLockHoldsValidTokenInLobby(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, _ := env.join("bob", "r", allGrants)
	host.expect("participant_joined")
	push := setSettings(t, host, `{"locked":true}`)
	if !push.Settings.Locked || push.Settings.Lobby {
		t.Fatalf("push %+v", push)
	}
	bob.expect("room_settings")

	// A valid token no longer enters: it waits for a moderator.
	carol, lb := env.knock("carol", "r", allGrants)
	host.expect("lobby_knock")
	// bob (no moderator) cannot let carol in.
	bob.send("lobby_admit", "a", proto.LobbyRefBody{LobbyID: lb.LobbyID})
	bob.expectError(proto.CodeForbidden)
	// A reconnect of someone in the room is not held, nor is a host.
	bob2, _ := env.join("bob", "r", allGrants)
	bob.expectBye(proto.ByeReplaced)
	_ = bob2
	env.join("host2", "r", hostGrants)

	host.send("lobby_admit", "a", proto.LobbyRefBody{LobbyID: lb.LobbyID})
	carol.expect("joined")

	// Unlocking admits whoever still waits.
	dan, _ := env.knock("dan", "r", allGrants)
	setSettings(t, host, `{"locked":false}`)
	dan.expect("joined")
}

func TestLobbyMessageBudget(t *testing.T) {
	env := startServer(t, func(c *Config) { c.LobbyByDefault = true })
	bob, _ := env.knock("bob", "r", allGrants)
	for range lobbyBudget - 1 {
		bob.send("ice_restart", "", nil)
		bob.expectError(proto.CodeForbidden)
	}
	bob.send("ice_restart", "", nil)
	bob.expectError(proto.CodeRateLimited)
	bob.expectClose(websocket.ClosePolicyViolation)
}

func TestLobbyExpires(t *testing.T) {
	env := startServer(t, func(c *Config) {
		c.LobbyByDefault = true
		c.LobbyTimeout = 300 * time.Millisecond
	})
	host, _ := env.joinHost("host", "r")
	bob, _ := env.knock("bob", "r", allGrants)
	host.expect("lobby_knock")
	var st proto.LobbyBody
	bob.expect("lobby").decode(t, &st)
	if st.Status != proto.LobbyExpired {
		t.Fatalf("status %+v", st)
	}
	bob.expectBye(proto.ByeTimeout)
	var left proto.LobbyLeftBody
	host.expect("lobby_left").decode(t, &left)
	if left.Reason != proto.LobbyExpired {
		t.Fatalf("lobby_left %+v", left)
	}
}

// TestModerationForbiddenForNonModerators sends every moderation message
// from a participant without the moderator role: each is refused and
// nothing happens to anyone.
func TestModerationForbiddenForNonModerators(t *testing.T) {
	env := startServer(t, func(c *Config) { c.LobbyByDefault = true })
	host, _ := env.joinHost("host", "r")
	host.send("hand", "h", proto.HandBody{Raised: ptr(true)})
	host.expect("participant_updated")
	mallory, _ := env.knock("mallory", "r", allGrants)
	host.expect("lobby_knock")
	host.send("lobby_admit_all", "", nil)
	mallory.expect("joined")
	host.expect("lobby_left")
	host.expect("participant_joined")
	waiting, wl := env.knock("wally", "r", allGrants)
	host.expect("lobby_knock")

	forged := []struct{ typ, data string }{
		{"lobby_admit", `{"lobbyId":"` + wl.LobbyID + `"}`},
		{"lobby_deny", `{"lobbyId":"` + wl.LobbyID + `"}`},
		{"lobby_admit_all", ``},
		{"room_settings", `{"lobby":false,"locked":false}`},
		{"mod_mute", `{"identity":"host","source":"microphone"}`},
		{"mod_mute_all", ``},
		{"mod_allow_unmute", `{"identity":"mallory"}`},
		{"mod_remove", `{"identity":"host","ban":true}`},
		{"mod_role", `{"identity":"mallory","moderator":true}`},
		{"end_meeting", ``},
		{"mod_lower_hand", `{"identity":"host"}`},
	}
	if len(forged) != len(moderationHandlers) {
		t.Fatalf("%d forged messages for %d moderation types", len(forged), len(moderationHandlers))
	}
	for _, f := range forged {
		raw := `{"type":"` + f.typ + `","id":"x"`
		if f.data != "" {
			raw += `,"data":` + f.data
		}
		mallory.sendRaw([]byte(raw + "}"))
		if eb := mallory.expectError(proto.CodeForbidden); !strings.Contains(eb.Message, "moderator") {
			t.Errorf("%s: %+v", f.typ, eb)
		}
	}
	// Nothing happened: the host is still in, unmuted and unchanged; the
	// waiting joiner still waits; the settings are as before.
	host.send("mod_mute", "probe", proto.ModMuteBody{Identity: "mallory", Source: "camera"})
	var mb proto.ModeratedBody
	mallory.expect("moderated").decode(t, &mb)
	if mb.Action != "mute" || mb.By.Identity != "host" {
		t.Fatalf("moderated %+v", mb)
	}
	if p := env.srv.dir.Lookup("r", "host"); p == nil || !env.srv.dir.HandRaised(p) {
		t.Fatal("host gone or its hand lowered")
	}
	if s := env.srv.mod.settingsView("r"); !s.Lobby || s.Locked {
		t.Fatalf("settings changed: %+v", s)
	}
	if env.srv.mod.role(auth.Claims{Room: "r", Identity: "mallory"}).Moderator() {
		t.Fatal("mallory promoted herself")
	}
	_ = waiting
	if got := counterValue(t, env.reg, "parley_signaling_moderation_actions_total"); got != 2 {
		t.Fatalf("%v actions counted, want the host's two", got)
	}
}

func TestPromotedModeratorLimits(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, _ := env.join("bob", "r", allGrants)
	host.expect("participant_joined")
	host.send("mod_role", "p", proto.ModRoleBody{Identity: "bob", Moderator: ptr(true)})
	var mb proto.ModeratedBody
	bob.expect("participant_updated")
	bob.expect("moderated").decode(t, &mb)
	if mb.Action != "promote" || mb.Moderator == nil || !*mb.Moderator {
		t.Fatalf("moderated %+v", mb)
	}
	var upd proto.ParticipantBody
	host.expect("participant_updated").decode(t, &upd)
	if upd.Participant.Identity != "bob" || !upd.Participant.Moderator {
		t.Fatalf("update %+v", upd)
	}
	// A promoted moderator cannot remove or demote the host, nor remove itself.
	bob.send("mod_remove", "r1", proto.ModRemoveBody{Identity: "host"})
	bob.expectError(proto.CodeForbidden)
	bob.send("mod_role", "r2", proto.ModRoleBody{Identity: "host", Moderator: ptr(false)})
	bob.expectError(proto.CodeForbidden)
	bob.send("mod_remove", "r3", proto.ModRemoveBody{Identity: "bob"})
	bob.expectError(proto.CodeBadRequest)
	bob.send("mod_mute", "r4", proto.ModMuteBody{Identity: "nobody", Source: "camera"})
	bob.expectError(proto.CodeNotFound)
	// But it may mute the host, and the host may demote it.
	bob.send("mod_mute", "r5", proto.ModMuteBody{Identity: "host", Source: "camera"})
	host.expect("moderated")
	host.send("mod_role", "d", proto.ModRoleBody{Identity: "bob", Moderator: ptr(false)})
	bob.expect("participant_updated")
	bob.expect("moderated")
	bob.send("mod_mute", "r6", proto.ModMuteBody{Identity: "host", Source: "camera"})
	bob.expectError(proto.CodeForbidden)
}

func TestRemoveAndBanRefusesRejoin(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, bj := env.join("bob", "r", allGrants)
	host.expect("participant_joined")
	fp := env.media.peer(t, bj.Participant.SID)
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_b", ClientTrackID: "b-v", Kind: "video"})
	host.expect("participant_updated")

	host.send("mod_remove", "x", proto.ModRemoveBody{Identity: "bob", Ban: true})
	var mb proto.ModeratedBody
	bob.expect("participant_updated")
	bob.expect("moderated").decode(t, &mb)
	if mb.Action != "remove" || !mb.Ban || mb.By.Identity != "host" {
		t.Fatalf("moderated %+v", mb)
	}
	bob.expectBye(proto.ByeRemoved)
	host.expect("participant_left")
	// The media session was closed at once, not after the socket closed.
	if !fp.isClosed() {
		t.Fatal("removed participant's media still open")
	}
	// A new token of the same identity is refused while the meeting lasts.
	time.Sleep(1100 * time.Millisecond) // a token issued after the removal's second
	c := env.mustDial()
	c.send("join", "j", proto.JoinBody{Token: env.token("bob", "r", allGrants), Protocol: 1})
	c.expectError(proto.CodeBanned)
	c.expectClose(websocket.ClosePolicyViolation)

	// Remove without ban: older tokens are refused, newer ones join.
	carolTok := env.token("carol", "r", allGrants)
	carol := env.mustDial()
	carol.send("join", "j", proto.JoinBody{Token: carolTok, Protocol: 1})
	carol.expect("joined")
	host.expect("participant_joined")
	host.send("mod_remove", "y", proto.ModRemoveBody{Identity: "carol"})
	carol.expect("moderated")
	carol.expectBye(proto.ByeRemoved)
	again := env.mustDial()
	again.send("join", "j", proto.JoinBody{Token: carolTok, Protocol: 1})
	again.expectError(proto.CodeUnauthorized)
}

func TestEndMeetingClosesEveryone(t *testing.T) {
	env := startServer(t, nil)
	host, hj := env.joinHost("host", "r")
	bob, bj := env.join("bob", "r", allGrants)
	host.expect("participant_joined")
	setSettings(t, host, `{"locked":true}`)
	bob.expect("room_settings")
	carol, _ := env.knock("carol", "r", allGrants)
	host.expect("lobby_knock")

	host.send("end_meeting", "e", nil)
	for _, c := range []*client{host, bob} {
		var mb proto.ModeratedBody
		c.expect("moderated").decode(t, &mb)
		if mb.Action != "end" {
			t.Fatalf("moderated %+v", mb)
		}
	}
	bob.expectBye(proto.ByeEnded) // no participant_left noise first
	bob.expectClose(websocket.CloseNormalClosure)
	var st proto.LobbyBody
	carol.expect("lobby").decode(t, &st)
	if st.Status != proto.LobbyEnded {
		t.Fatalf("carol %+v", st)
	}
	carol.expectBye(proto.ByeEnded)
	carol.expectClose(websocket.CloseNormalClosure)
	host.expectBye(proto.ByeEnded)
	host.expectClose(websocket.CloseNormalClosure)
	if !env.media.peer(t, hj.Participant.SID).isClosed() || !env.media.peer(t, bj.Participant.SID).isClosed() {
		t.Fatal("media left open")
	}
	// The meeting's state is gone: the room is open again.
	if s := env.srv.mod.settingsView("r"); s.Locked {
		t.Fatal("ended meeting's lock kept")
	}
}

func TestModeratorsUnmuteOnly(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, bj := env.join("bob", "r", allGrants)
	host.expect("participant_joined")
	setSettings(t, host, `{"moderatorsUnmuteOnly":true}`)
	bob.expect("room_settings")
	bob.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "mic", Kind: "audio", Source: "microphone"}}})
	bob.expect("published")
	fp := env.media.peer(t, bj.Participant.SID)
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_m", ClientTrackID: "mic", Kind: "audio"})
	bob.expect("participant_updated")
	host.expect("participant_updated")

	host.send("mod_mute_all", "m", nil)
	var muted proto.MutedBody
	bob.expect("muted").decode(t, &muted)
	if muted.TrackID != "mic" || !muted.Muted {
		t.Fatalf("muted %+v", muted)
	}
	bob.expect("participant_updated")
	var mb proto.ModeratedBody
	bob.expect("moderated").decode(t, &mb)
	if mb.Action != "mute" || mb.Source != "microphone" {
		t.Fatalf("moderated %+v", mb)
	}
	fp.mu.Lock()
	sfuMuted := fp.muted["TR_m"]
	fp.mu.Unlock()
	if !sfuMuted {
		t.Fatal("the SFU still forwards the muted microphone")
	}
	// bob cannot unmute, nor announce a fresh unmuted microphone.
	bob.send("mute", "u", proto.MuteBody{TrackID: "mic", Muted: ptr(false)})
	bob.expectError(proto.CodeForbidden)
	bob.send("publish", "p2", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "mic2", Kind: "audio", Source: "microphone"}}})
	bob.expectError(proto.CodeForbidden)
	// Until a moderator allows it.
	host.send("mod_allow_unmute", "a", proto.ModTargetBody{Identity: "bob"})
	bob.expect("moderated").decode(t, &mb)
	if mb.Action != "allow_unmute" {
		t.Fatalf("moderated %+v", mb)
	}
	bob.send("mute", "u2", proto.MuteBody{TrackID: "mic", Muted: ptr(false)})
	bob.expect("participant_updated")
}

func TestScreenShareAndDevFirstModerator(t *testing.T) {
	env := startServer(t, func(c *Config) { c.DevMode = true })
	ada, aj := env.join("ada", "r", allGrants) // no moderate grant: first in
	bob, bj := env.join("bob", "r", allGrants)
	ada.expect("participant_joined")
	if !aj.Participant.Moderator || bj.Participant.Moderator || len(bj.Participants) != 1 || !bj.Participants[0].Moderator {
		t.Fatalf("dev mode roles: ada %+v bob %+v", aj.Participant, bj)
	}
	setSettings(t, ada, `{"screenShare":"moderators"}`)
	bob.expect("room_settings")
	screen := proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "s", Kind: "video", Source: "screen"}}}
	bob.send("publish", "p", screen)
	bob.expectError(proto.CodeForbidden)
	ada.send("publish", "p", screen)
	ada.expect("published")
	// The dev moderator hands the role on.
	ada.send("mod_role", "r", proto.ModRoleBody{Identity: "bob", Moderator: ptr(true)})
	bob.expect("participant_updated")
	bob.expect("moderated")
	bob.send("publish", "p", screen)
	bob.expect("published")
}

func TestAdminModerationAPI(t *testing.T) {
	env := startServer(t, nil)
	code, body := env.admin("POST", "/api/admin/rooms/board/settings", `{"lobby":true,"chat":"moderators"}`)
	if code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	var rep adminSettingsReply
	if err := json.Unmarshal(body, &rep); err != nil || !rep.Settings.Lobby || rep.Settings.Chat != "moderators" {
		t.Fatalf("reply %s", body)
	}
	if code, body := env.admin("POST", "/api/admin/rooms/board/settings", `{"chat":"nobody"}`); code != 400 {
		t.Fatalf("bad settings: %d %s", code, body)
	}
	if code, _ := env.admin("POST", "/api/admin/rooms/board/settings", `{}`); code != 400 {
		t.Fatal("empty settings accepted")
	}
	// Set ahead: the first joiner without the grant waits.
	host, hj := env.joinHost("host", "board")
	if !hj.Settings.Lobby || hj.Settings.Chat != "moderators" {
		t.Fatalf("joined settings %+v", hj.Settings)
	}
	bob, lb := env.knock("bob", "board", allGrants)
	host.expect("lobby_knock")
	host.send("lobby_admit", "a", proto.LobbyRefBody{LobbyID: lb.LobbyID})
	bob.expect("joined")
	host.expect("lobby_left")

	code, body = env.admin("GET", "/api/admin/rooms/board/moderation", "")
	if code != 200 {
		t.Fatalf("moderation: %d %s", code, body)
	}
	var mr adminModerationReply
	if err := json.Unmarshal(body, &mr); err != nil {
		t.Fatal(err)
	}
	if len(mr.Events) != 1 || mr.Events[0].Action != "admit" || mr.Events[0].Actor != "host" || mr.Events[0].Target != "bob" || len(mr.Lobby) != 0 {
		t.Fatalf("moderation %s", body)
	}
	// A change from the admin API reaches the running meeting.
	if code, _ := env.admin("POST", "/api/admin/rooms/board/settings", `{"locked":true}`); code != 200 {
		t.Fatal(code)
	}
	var push proto.RoomSettingsPush
	host.expect("participant_joined")
	host.expect("room_settings").decode(t, &push)
	if !push.Settings.Locked || push.By.Identity != "" {
		t.Fatalf("push %+v", push)
	}
	// Room-scoped admin tokens for another room are refused.
	other, err := env.keys.Issue(testKeyID, auth.Claims{Identity: "ops", Room: "other", Grants: auth.Grants{Admin: true}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := env.do(httpReq{method: "GET", path: "/api/admin/rooms/board/moderation", bearer: other}); code != 403 {
		t.Fatalf("other room's admin: %d", code)
	}
	// Moderator tokens are minted by the admin API.
	code, body = env.admin("POST", "/api/admin/tokens", `{"room":"board","identity":"h2","grants":["publish","moderate"]}`)
	if code != 200 {
		t.Fatalf("mint: %d %s", code, body)
	}
	var tb proto.TokenBody
	_ = json.Unmarshal(body, &tb)
	claims, err := env.keys.Verify(tb.Token)
	if err != nil || !claims.Grants.Moderate {
		t.Fatalf("minted %+v %v", claims, err)
	}
}

func TestChatForModeratorsOnly(t *testing.T) {
	env := startChatServer(t, nil, nil)
	host := env.joinCC("host", "r", auth.Grants{Publish: true, Chat: true, Moderate: true})
	bob := env.joinCC("bob", "r", allGrants)
	conv := host.joined.ConversationID
	if conv == "" || bob.joined.ConversationID != conv {
		t.Fatalf("room conversations %q %q", conv, bob.joined.ConversationID)
	}
	bob.send(proto.TypeChatSend, "1", proto.ChatSendBody{ConversationID: conv, ClientMsgID: newClientID(), Text: "before"})
	bob.waitType(proto.TypeChatAck)
	host.send(proto.TypeRoomSettings, "s", proto.RoomSettingsBody{Chat: ptr("moderators")})
	bob.waitType(proto.TypeRoomSettings)
	bob.send(proto.TypeChatSend, "2", proto.ChatSendBody{ConversationID: conv, ClientMsgID: newClientID(), Text: "after"})
	if eb := bob.waitError(proto.CodeForbidden); !strings.Contains(eb.Message, "chat") {
		t.Fatalf("refusal %+v", eb)
	}
	host.send(proto.TypeChatSend, "3", proto.ChatSendBody{ConversationID: conv, ClientMsgID: newClientID(), Text: "hosts may"})
	host.waitType(proto.TypeChatAck)
}

// A participant a moderator muted under moderatorsUnmuteOnly cannot get
// round it with a new microphone announced muted (or not announced): the
// SFU does not forward it.
func TestModeratorMuteKeepsNewMicrophones(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, bj := env.join("bob", "r", allGrants)
	setSettings(t, host, `{"moderatorsUnmuteOnly":true}`)
	host.send("mod_mute", "m", proto.ModMuteBody{Identity: "bob", Source: "microphone"})
	skipTo(bob, "moderated")
	bob.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "mic2", Kind: "audio", Source: "microphone", Muted: true}}})
	bob.expect("published")
	fp := env.media.peer(t, bj.Participant.SID)
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_m2", ClientTrackID: "mic2", Kind: "audio"})
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_x", Kind: "audio"}) // not announced
	testkit.Eventually(t, waitLimit, "the new microphones muted in the SFU", func() bool {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		return fp.muted["TR_m2"] && fp.muted["TR_x"]
	})
}

// The admin API's removal also cuts the media at once, not when the
// removed client's connection finally closes.
func TestAdminRemoveCutsMedia(t *testing.T) {
	env := startServer(t, nil)
	bob, bj := env.join("bob", "r", allGrants)
	bob.autoPong = false
	if code, body := env.admin("DELETE", "/api/admin/rooms/r/participants/bob", ""); code != 204 {
		t.Fatalf("remove: %d %s", code, body)
	}
	if !env.media.peer(t, bj.Participant.SID).isClosed() {
		t.Fatal("media still open after the admin removal answered")
	}
}

// Even pongs have a budget in the lobby: a burst past it closes.
func TestLobbyRateBudget(t *testing.T) {
	env := startServer(t, func(c *Config) { c.LobbyByDefault = true })
	bob, _ := env.knock("bob", "r", allGrants)
	for range lobbyBurst + 1 {
		bob.send("pong", "", proto.PingBody{TS: 1})
	}
	bob.expectError(proto.CodeRateLimited)
	bob.expectClose(websocket.ClosePolicyViolation)
}
