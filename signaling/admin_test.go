package signaling

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

type httpReq struct {
	method, path, body string
	user, pass         string // basic auth when user != ""
	bearer             string
	origin             string
}

func (e *testEnv) do(r httpReq) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(r.method, e.base+r.path, strings.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json") // as API clients do
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (e *testEnv) admin(method, path, body string) (int, []byte) {
	return e.do(httpReq{method: method, path: path, body: body, user: testKeyID, pass: testSecret})
}

func TestAdminAuthRequired(t *testing.T) {
	env := startServer(t, nil)
	userTok := env.token("ada", "r", allGrants)
	roomAdmin, err := env.keys.Issue(testKeyID, auth.Claims{Identity: "mod", Room: "r", Grants: auth.Grants{Admin: true}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  httpReq
		want int
	}{
		{"no credentials", httpReq{method: "GET", path: "/api/admin/rooms"}, http.StatusUnauthorized},
		{"wrong secret", httpReq{method: "GET", path: "/api/admin/rooms", user: testKeyID, pass: otherSecretXX}, http.StatusUnauthorized},
		{"unknown key", httpReq{method: "GET", path: "/api/admin/rooms", user: "nobody", pass: testSecret}, http.StatusUnauthorized},
		{"forged bearer", httpReq{method: "GET", path: "/api/admin/rooms", bearer: userTok + "x"}, http.StatusUnauthorized},
		{"bearer without admin grant", httpReq{method: "GET", path: "/api/admin/rooms", bearer: userTok}, http.StatusForbidden},
		{"room admin on other room", httpReq{method: "GET", path: "/api/admin/rooms/other/participants", bearer: roomAdmin}, http.StatusForbidden},
		{"room admin on own room", httpReq{method: "GET", path: "/api/admin/rooms/r/participants", bearer: roomAdmin}, http.StatusNotFound},
		{"basic ok", httpReq{method: "GET", path: "/api/admin/rooms", user: testKeyID, pass: testSecret}, http.StatusOK},
		{"delete without auth", httpReq{method: "DELETE", path: "/api/admin/rooms/r/participants/ada"}, http.StatusUnauthorized},
		{"mute without auth", httpReq{method: "POST", path: "/api/admin/rooms/r/participants/ada/tracks/TR_1/mute", body: `{"muted":true}`}, http.StatusUnauthorized},
		{"token without auth", httpReq{method: "POST", path: "/api/admin/tokens", body: `{}`}, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := env.do(tc.req)
			if code != tc.want {
				t.Fatalf("status %d (%s), want %d", code, body, tc.want)
			}
			if code >= 400 {
				var eb proto.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Code == "" {
					t.Fatalf("error body %q is not {code,message}", body)
				}
			}
		})
	}
}

func TestAdminListRoomsAndParticipants(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "standup", allGrants)
	env.join("bob", "standup", allGrants)
	env.join("carol", "other", allGrants)
	ada.expect("participant_joined")
	ada.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t-v", Kind: "video", Source: "camera"}}})
	ada.expect("published")
	env.media.peer(t, aj.Participant.SID).opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_v", ClientTrackID: "t-v", Kind: "video", Codec: "video/VP8"})
	ada.expect("participant_updated")
	since := time.Date(2026, 12, 6, 8, 10, 41, 541_000_000, time.UTC)
	env.media.mu.Lock()
	env.media.stats["standup"] = []sfu.TrackStats{{TrackInfo: sfu.TrackInfo{SID: "TR_v", Codec: "video/VP8"}, Packets: 1234, NACKsReceived: 7, Subscribers: 1,
		Receivers: []sfu.ReceiverStats{{ParticipantID: "PA_bob", Layer: "h", Temporal: 1, EstimatedBps: 900_000,
			PacketsSent: 1200, BytesSent: 1_300_000, RTXPacketsSent: 3, RTXBytesSent: 3300, LayerSince: since,
			View: &sfu.TileView{Width: 640, Height: 360, Visible: true}}},
		Layers: []sfu.LayerStats{{RID: "q", BitrateBps: 150_000, LastMediaTime: since.Add(time.Second)},
			{RID: "h", BitrateBps: 500_000, LastMediaTime: since.Add(time.Second)}, {RID: "f"}}}}
	env.media.mu.Unlock()

	code, body := env.admin("GET", "/api/admin/rooms", "")
	if code != 200 {
		t.Fatalf("rooms: %d %s", code, body)
	}
	var rooms struct {
		Rooms []adminRoom `json:"rooms"`
	}
	if err := json.Unmarshal(body, &rooms); err != nil {
		t.Fatal(err)
	}
	want := []adminRoom{{Name: "other", Participants: 1}, {Name: "standup", Participants: 2}}
	if len(rooms.Rooms) != 2 || rooms.Rooms[0] != want[0] || rooms.Rooms[1] != want[1] {
		t.Fatalf("rooms %+v, want %+v", rooms.Rooms, want)
	}

	code, body = env.admin("GET", "/api/admin/rooms/standup/participants", "")
	if code != 200 {
		t.Fatalf("participants: %d %s", code, body)
	}
	var parts struct {
		Room         string             `json:"room"`
		Participants []adminParticipant `json:"participants"`
	}
	if err := json.Unmarshal(body, &parts); err != nil {
		t.Fatal(err)
	}
	if parts.Room != "standup" || len(parts.Participants) != 2 || parts.Participants[0].Identity != "ada" || parts.Participants[1].Identity != "bob" {
		t.Fatalf("participants %s", body)
	}
	tr := parts.Participants[0].Tracks
	if len(tr) != 1 || tr[0].SID != "TR_v" || tr[0].Source != "camera" || tr[0].Stats == nil ||
		tr[0].Stats.Packets != 1234 || tr[0].Stats.NACKsReceived != 7 || tr[0].Stats.Codec != "video/VP8" {
		t.Fatalf("ada's tracks %s", body)
	}
	rs := tr[0].Stats.Receivers
	if len(rs) != 1 || rs[0].LayerSince == nil || !rs[0].LayerSince.Equal(since) {
		t.Fatalf("ada's camera's receivers %+v, want bob on layer h since %v", rs, since)
	}
	if v := rs[0].View; v == nil || *v != (AdminTileView{Width: 640, Height: 360, Visible: true}) {
		t.Fatalf("bob's view %+v, want 640x360 visible", v)
	}
	rs[0].LayerSince, rs[0].View = nil, nil
	if rs[0] != (AdminReceiver{Participant: "PA_bob", Layer: "h", Temporal: 1, EstimatedBps: 900_000,
		PacketsSent: 1200, BytesSent: 1_300_000, RTXPacketsSent: 3, RTXBytesSent: 3300}) {
		t.Fatalf("ada's camera's receivers %+v, want bob on layer h at 900 kbit/s, 1200 packets sent", rs)
	}
	// The names an operator's script reads (docs/protocol.md): a layer
	// that never arrived has no lastMediaAt.
	for _, f := range []string{`"temporal":1`, `"packetsSent":1200`, `"bytesSent":1300000`, `"rtxPacketsSent":3`, `"rtxBytesSent":3300`,
		`"layerSince":"2026-12-06T08:10:41.541Z"`, `"view":{"width":640,"height":360,"visible":true}`,
		`"layers":[{"rid":"q","bitrateBps":150000,"lastMediaAt":"2026-12-06T08:10:42.541Z"},{"rid":"h","bitrateBps":500000,"lastMediaAt":"2026-12-06T08:10:42.541Z"},{"rid":"f","bitrateBps":0}]`} {
		if !strings.Contains(string(body), f) {
			t.Errorf("participants JSON lacks %s: %s", f, body)
		}
	}
	if code, _ := env.admin("GET", "/api/admin/rooms/nosuch/participants", ""); code != 404 {
		t.Fatalf("unknown room: %d", code)
	}
}

func TestAdminRemoveParticipant(t *testing.T) {
	env := startServer(t, nil)
	ada, _ := env.join("ada", "r", allGrants)
	bob, bj := env.join("bob", "r", allGrants)
	ada.expect("participant_joined")

	if code, body := env.admin("DELETE", "/api/admin/rooms/r/participants/bob", ""); code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", code, body)
	}
	bob.expectBye(proto.ByeRemoved)
	bob.expectClose(websocket.CloseNormalClosure)
	var left proto.ParticipantLeftBody
	ada.expect("participant_left").decode(t, &left)
	if left.SID != bj.Participant.SID {
		t.Fatalf("left %+v", left)
	}
	testkit.Eventually(t, waitLimit, "bob's media closed", env.media.peer(t, bj.Participant.SID).isClosed)
	if code, _ := env.admin("DELETE", "/api/admin/rooms/r/participants/bob", ""); code != http.StatusNotFound {
		t.Fatalf("second remove: %d", code)
	}
}

func TestAdminMuteTrack(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "r", allGrants)
	bob, _ := env.join("bob", "r", allGrants)
	ada.expect("participant_joined")
	ada.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t-a", Kind: "audio", Source: "microphone"}}})
	ada.expect("published")
	fp := env.media.peer(t, aj.Participant.SID)
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_a", ClientTrackID: "t-a", Kind: "audio"})
	ada.expect("participant_updated")
	bob.expect("participant_updated")

	if code, body := env.admin("POST", "/api/admin/rooms/r/participants/ada/tracks/TR_a/mute", `{"muted":true}`); code != http.StatusNoContent {
		t.Fatalf("mute: %d %s", code, body)
	}
	var mb proto.MutedBody
	ada.expect("muted").decode(t, &mb)
	if mb.TrackID != "t-a" || !mb.Muted {
		t.Fatalf("muted %+v", mb)
	}
	var upd proto.ParticipantBody
	bob.expect("participant_updated").decode(t, &upd)
	if len(upd.Participant.Tracks) != 1 || !upd.Participant.Tracks[0].Muted {
		t.Fatalf("bob sees %+v", upd.Participant.Tracks)
	}
	fp.mu.Lock()
	sfuMuted := fp.muted["TR_a"]
	fp.mu.Unlock()
	if !sfuMuted {
		t.Fatal("SFU was not told to stop forwarding")
	}

	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/api/admin/rooms/r/participants/ada/tracks/TR_nope/mute", `{"muted":true}`, 404},
		{"/api/admin/rooms/r/participants/zed/tracks/TR_a/mute", `{"muted":true}`, 404},
		{"/api/admin/rooms/r/participants/ada/tracks/TR_a/mute", `{}`, 400},
		{"/api/admin/rooms/r/participants/ada/tracks/TR_a/mute", `{"muted":"yes"}`, 400},
	} {
		if code, body := env.admin("POST", tc.path, tc.body); code != tc.want {
			t.Errorf("POST %s %s: %d %s, want %d", tc.path, tc.body, code, body, tc.want)
		}
	}
}

func TestAdminCreateToken(t *testing.T) {
	env := startServer(t, nil)
	code, body := env.admin("POST", "/api/admin/tokens", `{"room":"standup","identity":"ada","name":"Ada","ttl":"30m","grants":["publish","subscribe"]}`)
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	var tb proto.TokenBody
	if err := json.Unmarshal(body, &tb); err != nil {
		t.Fatal(err)
	}
	c, err := env.keys.Verify(tb.Token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "ada" || c.Room != "standup" || c.Name != "Ada" || c.Grants != (auth.Grants{Publish: true, Subscribe: true}) {
		t.Fatalf("claims %+v", c)
	}
	if d := time.Until(c.ExpiresAt); d > 30*time.Minute || d < 29*time.Minute {
		t.Fatalf("expires in %s", d)
	}
	// The new token joins the room.
	ws := env.mustDial()
	ws.send("join", "1", proto.JoinBody{Token: tb.Token, Protocol: 1})
	ws.expect("joined")

	bad := []string{
		`{"room":"bad room","identity":"a"}`,
		`{"room":"r","identity":""}`,
		`{"room":"r","identity":"a","ttl":"forever"}`,
		`{"room":"r","identity":"a","ttl":"1000h"}`,
		`{"room":"r","identity":"a","grants":["root"]}`,
		`{"room":"*","identity":"a","grants":["publish"]}`,
		`{"room":"r","identity":"a","extra":1}`,
		`{"room":`,
	}
	for _, b := range bad {
		if code, body := env.admin("POST", "/api/admin/tokens", b); code != 400 {
			t.Errorf("%s: %d %s, want 400", b, code, body)
		}
	}
	big := `{"room":"r","identity":"` + strings.Repeat("a", maxAdminBody) + `"}`
	if code, _ := env.admin("POST", "/api/admin/tokens", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", code)
	}
}

func TestDevTokenEndpoint(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		env := startServer(t, nil)
		code, body := env.do(httpReq{method: "POST", path: "/api/dev/token", body: `{"room":"r","name":"Ada"}`, origin: env.base})
		if code != 404 {
			t.Fatalf("status %d %s, want 404", code, body)
		}
		if bytes.Contains(body, []byte("web client")) {
			t.Fatal("API path fell through to the web client")
		}
	})
	t.Run("on", func(t *testing.T) {
		env := startServer(t, func(c *Config) { c.DevMode = true })
		code, body := env.do(httpReq{method: "POST", path: "/api/dev/token", body: `{"room":"standup","name":" Ada "}`, origin: env.base})
		if code != 200 {
			t.Fatalf("status %d %s", code, body)
		}
		var tb proto.TokenBody
		if err := json.Unmarshal(body, &tb); err != nil {
			t.Fatal(err)
		}
		c, err := env.keys.Verify(tb.Token)
		if err != nil {
			t.Fatal(err)
		}
		if c.Room != "standup" || c.Name != "Ada" || !strings.HasPrefix(c.Identity, "guest-") ||
			c.Grants != (auth.Grants{Publish: true, Subscribe: true, Chat: true}) {
			t.Fatalf("claims %+v", c)
		}
		if d := time.Until(c.ExpiresAt); d > 10*time.Minute || d < 9*time.Minute {
			t.Fatalf("guest token lives %s", d)
		}
		for _, tc := range []struct {
			body, origin string
			want         int
		}{
			{`{"room":"a/b","name":"x"}`, env.base, 400},
			{`{"room":"` + strings.Repeat("r", 65) + `"}`, env.base, 400},
			{`{"room":"r","name":"x"}`, "https://evil.example", 403},
			{`not json`, env.base, 400},
		} {
			if code, body := env.do(httpReq{method: "POST", path: "/api/dev/token", body: tc.body, origin: tc.origin}); code != tc.want {
				t.Errorf("%s from %s: %d %s, want %d", tc.body, tc.origin, code, body, tc.want)
			}
		}
	})
}

func TestHealthMetricsAndWeb(t *testing.T) {
	env := startServer(t, nil)
	ada, _ := env.join("ada", "r", allGrants)
	ada.sendRaw([]byte("{bad"))
	ada.expectError(proto.CodeBadRequest)
	if code, body := env.do(httpReq{method: "GET", path: "/healthz"}); code != 200 || string(body) != "ok" {
		t.Fatalf("healthz %d %q", code, body)
	}
	code, body := env.do(httpReq{method: "GET", path: "/metrics"})
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	for _, want := range []string{
		"parley_signaling_connections 1",
		"parley_signaling_participants 1",
		"parley_signaling_rooms 1",
		`parley_signaling_messages_total{type="join"} 1`,
		`parley_signaling_errors_total{code="bad_request"} 1`,
		"parley_signaling_send_queue_drops_total 0",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, body := env.do(httpReq{method: "GET", path: "/r/standup"}); code != 200 || string(body) != "web client" {
		t.Fatalf("web client route %d %q", code, body)
	}
}

// A burst of guest token requests beyond the endpoint's ceiling is
// answered 429 rate_limited, not served without bound.
func TestDevTokenRateLimited(t *testing.T) {
	env := startServer(t, func(c *Config) { c.DevMode = true })
	limited := 0
	for range devTokenBurst + 20 {
		code, body := env.do(httpReq{method: "POST", path: "/api/dev/token", body: `{"room":"r","name":"x"}`, origin: env.base})
		if code == http.StatusTooManyRequests {
			var eb proto.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Code != "rate_limited" {
				t.Fatalf("429 body %s", body)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Fatalf("%d requests in a burst were all served", devTokenBurst+20)
	}
}
