package signaling

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

func TestOriginCheck(t *testing.T) {
	env := startServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://app.example"} })
	tests := []struct {
		origin string
		want   int
	}{
		{env.base, http.StatusSwitchingProtocols},
		{"https://app.example", http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols}, // non-browser client
		{"https://evil.example", http.StatusForbidden},
		{"https://app.example.evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tc := range tests {
		c, resp, err := env.dial(tc.origin)
		if resp == nil {
			t.Fatalf("origin %q: no response: %v", tc.origin, err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("origin %q: status %d, want %d", tc.origin, resp.StatusCode, tc.want)
		}
		if c != nil {
			_ = c.ws.Close()
		}
	}
}

func TestJoinRefused(t *testing.T) {
	env := startServer(t, nil)
	forgedKeys, err := auth.NewKeySet(map[string]string{testKeyID: otherSecretXX})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forgedKeys.Issue(testKeyID, auth.Claims{Identity: "mallory", Room: "r", Grants: allGrants}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "ada", "room": "r", "exp": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix(),
	})
	expired.Header["kid"] = testKeyID
	expiredTok, err := expired.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	adminAll, err := env.keys.Issue(testKeyID, auth.Claims{Identity: "ops", Room: "*", Grants: auth.Grants{Admin: true}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good := env.token("ada", "r", allGrants)

	tests := []struct {
		name     string
		typ      string
		body     any
		code     string
		msgPart  string
		closeLen int
	}{
		{"forged token", "join", proto.JoinBody{Token: forged, Protocol: 1}, proto.CodeUnauthorized, "invalid", websocket.ClosePolicyViolation},
		{"expired token", "join", proto.JoinBody{Token: expiredTok, Protocol: 1}, proto.CodeUnauthorized, "expired", websocket.ClosePolicyViolation},
		{"wildcard admin token", "join", proto.JoinBody{Token: adminAll, Protocol: 1}, proto.CodeUnauthorized, "room", websocket.ClosePolicyViolation},
		{"wrong protocol", "join", proto.JoinBody{Token: good, Protocol: 2}, proto.CodeProtocolVersion, "protocol 1", websocket.ClosePolicyViolation},
		{"publish before join", "publish", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t", Kind: "video", Source: "camera"}}}, proto.CodeNotJoined, "join", websocket.ClosePolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := env.mustDial()
			c.t = t
			c.send(tc.typ, "1", tc.body)
			m := c.expect("error")
			if m.Re != "1" {
				t.Errorf("re = %q", m.Re)
			}
			var eb proto.ErrorBody
			m.decode(t, &eb)
			if eb.Code != tc.code || !strings.Contains(eb.Message, tc.msgPart) {
				t.Fatalf("error %+v, want code %s mentioning %q", eb, tc.code, tc.msgPart)
			}
			c.expectClose(tc.closeLen)
		})
	}
	// None of them reached the media layer.
	env.media.mu.Lock()
	n := env.media.joins
	env.media.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d media sessions created for refused joins", n)
	}
}

func TestJoinTimeout(t *testing.T) {
	env := startServer(t, func(c *Config) { c.JoinTimeout = 150 * time.Millisecond })
	c := env.mustDial()
	c.expectError(proto.CodeUnauthorized)
	c.expectClose(websocket.ClosePolicyViolation)
}

func TestJoinAndLeaveSeenByOthers(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "standup", allGrants)
	if aj.Room != "standup" || aj.Protocol != 1 || aj.Participant.Identity != "ada" || aj.Participant.Name != "Ada" ||
		!strings.HasPrefix(aj.Participant.SID, "PA_") || len(aj.Participants) != 0 || !aj.Grants.Publish || aj.Grants.Admin {
		t.Fatalf("joined = %+v", aj)
	}
	if aj.PingIntervalMs != 200 || aj.PingTimeoutMs != 10000 {
		t.Fatalf("ping timings %d/%d", aj.PingIntervalMs, aj.PingTimeoutMs)
	}
	if len(aj.ICEServers) != 1 || aj.ICEServers[0].Username != "u-ada" || aj.ICEServers[0].Credential != "secret" {
		t.Fatalf("iceServers = %+v", aj.ICEServers)
	}
	// The media session got the participant's sid and grants.
	fp := env.media.peer(t, aj.Participant.SID)
	if fp.room != "standup" || !fp.opts.CanPublish || !fp.opts.CanSubscribe {
		t.Fatalf("media join %+v", fp)
	}

	bob, bj := env.join("bob", "standup", auth.Grants{Subscribe: true})
	if len(bj.Participants) != 1 || bj.Participants[0].Identity != "ada" || bj.Participants[0].Tracks == nil {
		t.Fatalf("bob's joined participants = %+v", bj.Participants)
	}
	var pj proto.ParticipantBody
	ada.expect("participant_joined").decode(t, &pj)
	if pj.Participant.SID != bj.Participant.SID || pj.Participant.Identity != "bob" {
		t.Fatalf("participant_joined %+v", pj)
	}
	// Someone in another room is not told.
	carol, _ := env.join("carol", "other", allGrants)

	bob.send("leave", "", nil)
	bob.expectBye(proto.ByeLeft)
	bob.expectClose(websocket.CloseNormalClosure)
	var left proto.ParticipantLeftBody
	ada.expect("participant_left").decode(t, &left)
	if left.SID != bj.Participant.SID || left.Identity != "bob" {
		t.Fatalf("participant_left %+v", left)
	}
	bobPeer := env.media.peer(t, bj.Participant.SID)
	testkit.Eventually(t, waitLimit, "bob's media closed", bobPeer.isClosed)

	// carol saw nothing from standup: her next message is a pong reply path
	// check via an error we provoke.
	carol.send("unpublish", "x", proto.TrackRef{TrackID: "nope"})
	carol.expectError(proto.CodeNotFound)
}

func TestFreshTokenAfterJoin(t *testing.T) {
	env := startServer(t, func(c *Config) { c.TokenTTL = 2 * time.Second })
	c := env.mustDial()
	c.send("join", "1", proto.JoinBody{Token: env.token("ada", "r", allGrants), Protocol: 1})
	c.expect("joined")
	for i := 0; i < 2; i++ { // right after join, then after TokenTTL/2
		var tb proto.TokenBody
		c.expect("token").decode(t, &tb)
		claims, err := env.keys.Verify(tb.Token)
		if err != nil {
			t.Fatalf("fresh token invalid: %v", err)
		}
		if claims.Identity != "ada" || claims.Room != "r" || claims.Grants != allGrants {
			t.Fatalf("fresh token claims %+v", claims)
		}
		if d := time.Until(claims.ExpiresAt); d > 2*time.Second || d < 0 {
			t.Fatalf("fresh token expires in %s", d)
		}
	}
}

func TestNegotiationRelayed(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "r", allGrants)
	fp := env.media.peer(t, aj.Participant.SID)

	// Publisher offer -> SFU -> answer with the request id.
	ada.send("offer", "3", proto.SDPBody{SDP: "v=0 pub"})
	m := ada.expect("answer")
	var ans proto.SDPBody
	m.decode(t, &ans)
	if m.Re != "3" || ans.SDP != "answer-to:v=0 pub" {
		t.Fatalf("answer re=%q sdp=%q", m.Re, ans.SDP)
	}
	// A bad offer is reported, the connection stays usable.
	ada.send("offer", "4", proto.SDPBody{SDP: "bad"})
	if e := ada.expect("error"); e.Re != "4" {
		t.Fatalf("error re %q", e.Re)
	}

	// Subscriber offer from the SFU reaches the client; its answer returns.
	fp.opts.Events.SubscriberOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0 sub"})
	var off proto.SDPBody
	ada.expect("offer").decode(t, &off)
	if off.SDP != "v=0 sub" {
		t.Fatalf("subscriber offer %q", off.SDP)
	}
	ada.send("answer", "", proto.SDPBody{SDP: "v=0 sub-answer"})

	// Candidates both ways.
	mid := "0"
	ada.send("candidate", "", proto.CandidateBody{Target: "subscriber", Candidate: &proto.CandidateInit{Candidate: "candidate:c1", SDPMid: &mid}})
	idx := uint16(0)
	fp.opts.Events.ICECandidate(sfu.Publisher, &webrtc.ICECandidateInit{Candidate: "candidate:s1", SDPMid: &mid, SDPMLineIndex: &idx})
	fp.opts.Events.ICECandidate(sfu.Publisher, nil) // end of gathering: not sent
	var cb proto.CandidateBody
	ada.expect("candidate").decode(t, &cb)
	if cb.Target != "publisher" || cb.Candidate.Candidate != "candidate:s1" || *cb.Candidate.SDPMid != "0" || *cb.Candidate.SDPMLineIndex != 0 {
		t.Fatalf("server candidate %+v", cb)
	}
	ada.send("ice_restart", "", nil)

	testkit.Eventually(t, waitLimit, "SFU to see answer, candidate and restart", func() bool {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		return len(fp.answers) == 1 && fp.answers[0] == "v=0 sub-answer" &&
			len(fp.candidates) == 1 && fp.candidates[0] == "subscriber:candidate:c1" && fp.restarts == 1
	})
}

func TestPublishTracksAndMute(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "r", allGrants)
	fp := env.media.peer(t, aj.Participant.SID)

	ada.send("publish", "2", proto.PublishBody{Tracks: []proto.TrackAnnouncement{
		{TrackID: "t-v", Kind: "video", Source: "screen"},
		{TrackID: "t-a", Kind: "audio", Source: "microphone", Muted: true},
	}})
	var pub proto.PublishBody
	m := ada.expect("published")
	m.decode(t, &pub)
	if m.Re != "2" || len(pub.Tracks) != 2 {
		t.Fatalf("published %+v", pub)
	}
	// The SFU reports the media; the announcement supplies source and mute.
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_v", ParticipantID: aj.Participant.SID, ClientTrackID: "t-v", Kind: "video"})
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_a", ParticipantID: aj.Participant.SID, ClientTrackID: "t-a", Kind: "audio"})
	var upd proto.ParticipantBody
	ada.expect("participant_updated")
	ada.expect("participant_updated").decode(t, &upd)
	want := []proto.TrackView{{SID: "TR_a", TrackID: "t-a", Kind: "audio", Source: "microphone", Muted: true}, {SID: "TR_v", TrackID: "t-v", Kind: "video", Source: "screen"}}
	if len(upd.Participant.Tracks) != 2 || upd.Participant.Tracks[0] != want[0] || upd.Participant.Tracks[1] != want[1] {
		t.Fatalf("tracks %+v, want %+v", upd.Participant.Tracks, want)
	}

	// A newcomer sees the tracks in its snapshot.
	bob, bj := env.join("bob", "r", auth.Grants{Subscribe: true})
	if len(bj.Participants) != 1 || len(bj.Participants[0].Tracks) != 2 {
		t.Fatalf("bob's snapshot %+v", bj.Participants)
	}
	ada.expect("participant_joined")

	// Unmute is seen by both and reaches the SFU.
	ada.send("mute", "", proto.MuteBody{TrackID: "t-a", Muted: ptr(false)})
	for _, c := range []*client{ada, bob} {
		c.expect("participant_updated").decode(t, &upd)
		if upd.Participant.Tracks[0].Muted {
			t.Fatalf("still muted: %+v", upd.Participant.Tracks)
		}
	}
	// bob may not publish.
	bob.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "x", Kind: "video", Source: "camera"}}})
	if e := bob.expectError(proto.CodeForbidden); !strings.Contains(e.Message, "publish") {
		t.Fatalf("forbidden message %q", e.Message)
	}
	bob.send("mute", "", proto.MuteBody{TrackID: "t-a", Muted: ptr(true)})
	bob.expectError(proto.CodeForbidden)

	// Unpublish removes the track everywhere and tells the SFU.
	ada.send("unpublish", "", proto.TrackRef{TrackID: "t-v"})
	bob.expect("participant_updated").decode(t, &upd)
	if len(upd.Participant.Tracks) != 1 || upd.Participant.Tracks[0].SID != "TR_a" {
		t.Fatalf("after unpublish %+v", upd.Participant.Tracks)
	}
	ada.send("unpublish", "u2", proto.TrackRef{TrackID: "t-v"})
	ada.expect("participant_updated")
	ada.expectError(proto.CodeNotFound)

	// The SFU ending a track also updates the room.
	fp.opts.Events.TrackUnpublished(sfu.TrackInfo{SID: "TR_a", ClientTrackID: "t-a", Kind: "audio"})
	bob.expect("participant_updated").decode(t, &upd)
	if len(upd.Participant.Tracks) != 0 {
		t.Fatalf("after SFU unpublish %+v", upd.Participant.Tracks)
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if m, ok := fp.muted["TR_a"]; !ok || m {
		t.Fatalf("SFU mute state %v", fp.muted)
	}
	if len(fp.unpublished) != 1 || fp.unpublished[0] != "TR_v" {
		t.Fatalf("SFU unpublished %v", fp.unpublished)
	}
}

func ptr[T any](v T) *T { return &v }

func TestOversizedFrameCloses1009(t *testing.T) {
	env := startServer(t, func(c *Config) { c.MaxMessageBytes = 1024 })
	c, _ := env.join("ada", "r", allGrants)
	c.sendRaw([]byte(`{"type":"pong","data":{"ts":1},"pad":"` + strings.Repeat("x", 4000) + `"}`))
	c.expectError(proto.CodeTooLarge)
	c.expectClose(websocket.CloseMessageTooBig)
}

func TestRateLimit(t *testing.T) {
	env := startServer(t, func(c *Config) { c.RatePerSecond = 1; c.RateBurst = 3 })
	c := env.mustDial()
	c.send("join", "1", proto.JoinBody{Token: env.token("ada", "r", allGrants), Protocol: 1})
	c.expect("joined")
	const sent = 10
	for i := 0; i < sent; i++ {
		c.send("unpublish", "u", proto.TrackRef{TrackID: "none"})
	}
	// The burst left after join lets the first requests through (answered
	// not_found); the rest are refused with rate_limited, not processed.
	codes := map[string]int{}
	for i := 0; i < sent; i++ {
		var eb proto.ErrorBody
		c.expect("error").decode(t, &eb)
		codes[eb.Code]++
		if i == 0 && eb.Code != proto.CodeNotFound {
			t.Fatalf("first request answered %s", eb.Code)
		}
	}
	if codes[proto.CodeNotFound] < 2 || codes[proto.CodeRateLimited] < 5 || codes[proto.CodeNotFound]+codes[proto.CodeRateLimited] != sent {
		t.Fatalf("answers %v", codes)
	}
}

func TestRateLimitClosesAfterManyViolations(t *testing.T) {
	env := startServer(t, func(c *Config) { c.RatePerSecond = 1; c.RateBurst = 1 })
	c, _ := env.join("ada", "r", allGrants)
	for i := 0; i < maxRateViolations+1; i++ {
		c.send("pong", "", proto.PingBody{TS: 1})
	}
	c.autoPong = false
	c.expectClose(websocket.ClosePolicyViolation)
}

func TestMalformedJSONKeepsConnection(t *testing.T) {
	env := startServer(t, nil)
	c, _ := env.join("ada", "r", allGrants)
	c.sendRaw([]byte(`{"type":"publish",`))
	c.expectError(proto.CodeBadRequest)
	c.send("dance", "d", nil)
	if m := c.expect("error"); m.Re != "d" || !strings.Contains(string(m.Data), proto.CodeUnknownType) {
		t.Fatalf("unknown type answer %s re=%q", m.Data, m.Re)
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.expectError(proto.CodeBadRequest)
	c.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t", Kind: "video", Source: "camera"}}})
	if m := c.expect("published"); m.Re != "p" {
		t.Fatalf("published re %q", m.Re)
	}
}

func TestHeartbeatTimeoutDropsSilentClient(t *testing.T) {
	env := startServer(t, func(c *Config) {
		// Generous enough that ada, who answers, survives a loaded machine.
		c.PingInterval = 100 * time.Millisecond
		c.PingTimeout = time.Second
	})
	ada, _ := env.join("ada", "r", allGrants)
	bob, bj := env.join("bob", "r", allGrants)
	ada.expect("participant_joined")
	// bob goes silent: no pongs of either kind.
	bob.autoPong = false
	bob.ws.SetPingHandler(func(string) error { return nil })
	fp := env.media.peer(t, bj.Participant.SID)
	fp.opts.Events.TrackPublished(sfu.TrackInfo{SID: "TR_b", ClientTrackID: "b-v", Kind: "video"})
	ada.expect("participant_updated")

	start := time.Now()
	var left proto.ParticipantLeftBody
	ada.expect("participant_left").decode(t, &left) // ada keeps answering pings
	if left.Identity != "bob" {
		t.Fatalf("left %+v", left)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("bob dropped after %s, before the ping timeout", d)
	}
	bob.expect("participant_updated") // his own track, queued before he went silent
	bob.expectBye(proto.ByeTimeout)
	testkit.Eventually(t, waitLimit, "bob's media closed", fp.isClosed)
	// ada, who answered pings, is still in the room.
	ada.send("unpublish", "x", proto.TrackRef{TrackID: "none"})
	ada.expectError(proto.CodeNotFound)
}

func TestDuplicateIdentityReplaced(t *testing.T) {
	env := startServer(t, nil)
	obs, _ := env.join("observer", "r", allGrants)
	old, oj := env.join("ada", "r", allGrants)
	obs.expect("participant_joined")
	newer, nj := env.join("ada", "r", allGrants)
	if nj.Participant.SID == oj.Participant.SID {
		t.Fatal("new connection reused the sid")
	}
	if len(nj.Participants) != 1 || nj.Participants[0].Identity != "observer" {
		t.Fatalf("new snapshot %+v", nj.Participants)
	}
	old.expectBye(proto.ByeReplaced)
	old.expectClose(websocket.CloseNormalClosure)
	var left proto.ParticipantLeftBody
	obs.expect("participant_left").decode(t, &left)
	var joined proto.ParticipantBody
	obs.expect("participant_joined").decode(t, &joined)
	if left.SID != oj.Participant.SID || joined.Participant.SID != nj.Participant.SID {
		t.Fatalf("observer saw left %+v joined %+v", left, joined.Participant)
	}
	testkit.Eventually(t, waitLimit, "old media closed", env.media.peer(t, oj.Participant.SID).isClosed)
	// The replacement keeps working and is not removed by the old one's teardown.
	newer.send("unpublish", "x", proto.TrackRef{TrackID: "none"})
	newer.expectError(proto.CodeNotFound)
	if p := env.srv.dir.Lookup("r", "ada"); p == nil || p.SID != nj.Participant.SID {
		t.Fatalf("room holds %+v", p)
	}
}

func TestRoomFull(t *testing.T) {
	env := startServer(t, func(c *Config) { c.MaxParticipantsPerRoom = 1 })
	env.join("ada", "r", allGrants)
	c := env.mustDial()
	c.send("join", "1", proto.JoinBody{Token: env.token("bob", "r", allGrants), Protocol: 1})
	c.expectError(proto.CodeRoomFull)
	c.expectClose(websocket.ClosePolicyViolation)
	// Replacing yourself is not blocked by the limit.
	env.join("ada", "r", allGrants)
}

func TestShutdownSendsBye(t *testing.T) {
	env := startServer(t, nil)
	ada, aj := env.join("ada", "r", allGrants)
	pre := env.mustDial() // not joined yet
	env.stop()
	ada.expectBye(proto.ByeShutdown)
	ada.expectClose(websocket.CloseGoingAway)
	pre.expectBye(proto.ByeShutdown)
	if !env.media.peer(t, aj.Participant.SID).isClosed() {
		t.Fatal("media session left open after shutdown")
	}
}

func TestVideoViewReachesSFU(t *testing.T) {
	env := startServer(t, nil)
	bob, bj := env.join("bob", "r", auth.Grants{Subscribe: true})
	fp := env.media.peer(t, bj.Participant.SID)
	for _, c := range []struct {
		w, h    int
		visible bool
		want    string
	}{
		{320, 180, true, "320x180"}, {1920, 1080, false, "hidden"}, {640, 360, true, "640x360"},
	} {
		bob.send("video_view", "", proto.VideoViewBody{TrackSID: "TR_v", Width: c.w, Height: c.h, Visible: ptr(c.visible)})
		testkit.Eventually(t, waitLimit, fmt.Sprintf("view %s", c.want), func() bool {
			return fp.view("TR_v") == c.want
		})
	}
	bob.send("video_view", "v", proto.VideoViewBody{TrackSID: "TR_v", Width: -1, Height: 5, Visible: ptr(true)})
	bob.expectError(proto.CodeBadRequest)
	bob.send("video_view", "v2", map[string]any{"trackSid": "TR_v", "width": 5, "height": 5})
	bob.expectError(proto.CodeBadRequest)
}
