package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/proto"
)

func decodeParticipant(t *testing.T, m msg) proto.ParticipantView {
	t.Helper()
	var pb proto.ParticipantBody
	m.decode(t, &pb)
	return pb.Participant
}

func TestRaiseAndLowerHand(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, _ := env.join("bob", "r", allGrants)
	host.expect("participant_joined")

	before := time.Now().UnixMilli()
	bob.send("hand", "h1", proto.HandBody{Raised: ptr(true)})
	for _, c := range []*client{bob, host} {
		v := decodeParticipant(t, c.expect("participant_updated"))
		if v.Identity != "bob" || !v.HandRaised || v.HandRaisedAt < before || v.HandRaisedAt > time.Now().UnixMilli() {
			t.Fatalf("raised hand seen as %+v", v)
		}
	}
	// Raising a raised hand changes nothing: the next message the host
	// gets is the reaction sent after it.
	bob.send("hand", "h2", proto.HandBody{Raised: ptr(true)})
	bob.send("reaction", "r", proto.ReactionBody{Emoji: "👍"})
	host.expect("reaction")
	bob.expect("reaction")

	// A newcomer sees the raised hand in joined.
	_, cj := env.join("carol", "r", allGrants)
	if len(cj.Participants) != 2 || !cj.Participants[1].HandRaised || cj.Participants[0].HandRaised {
		t.Fatalf("carol joined with %+v", cj.Participants)
	}
	host.expect("participant_joined")
	bob.expect("participant_joined")

	host.send("mod_lower_hand", "l", proto.ModTargetBody{Identity: "nobody"})
	host.expectError(proto.CodeNotFound)
	host.send("mod_lower_hand", "l", proto.ModTargetBody{Identity: "bob"})
	if v := decodeParticipant(t, bob.expect("participant_updated")); v.HandRaised || v.HandRaisedAt != 0 {
		t.Fatalf("lowered hand seen by bob as %+v", v)
	}
	var mb proto.ModeratedBody
	bob.expect("moderated").decode(t, &mb)
	if mb.Action != "lower_hand" || mb.By.Identity != "host" {
		t.Fatalf("moderated %+v", mb)
	}
	if v := decodeParticipant(t, host.expect("participant_updated")); v.Identity != "bob" || v.HandRaised {
		t.Fatalf("lowered hand seen by host as %+v", v)
	}
	// Lowering a lowered hand is not an action: nothing recorded.
	host.send("mod_lower_hand", "l2", proto.ModTargetBody{Identity: "bob"})
	host.send("reaction", "r", proto.ReactionBody{Emoji: "🎉"})
	host.expect("reaction")
	_, _, events := env.srv.mod.reg.View("r")
	if len(events) != 1 || events[0].Action != "lower_hand" || events[0].Target != "bob" {
		t.Fatalf("audit %+v", events)
	}
}

func TestHandRateLimit(t *testing.T) {
	env := startServer(t, nil)
	bob, _ := env.join("bob", "r", allGrants)
	for i := range handBurst {
		bob.send("hand", "h", proto.HandBody{Raised: ptr(i%2 == 0)})
		bob.expect("participant_updated")
	}
	bob.send("hand", "h", proto.HandBody{Raised: ptr(true)})
	if eb := bob.expectError(proto.CodeRateLimited); !strings.Contains(eb.Message, "hand") {
		t.Fatalf("refusal %+v", eb)
	}
	bob.send("hand", "h", proto.HandBody{})
	bob.expectError(proto.CodeBadRequest)
}

func TestAskUnmute(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, _ := env.join("bob", "r", allGrants)
	host.expect("participant_joined")

	bob.send("ask_unmute", "a0", nil)
	if eb := bob.expectError(proto.CodeBadRequest); !strings.Contains(eb.Message, "unmute yourself") {
		t.Fatalf("unrestricted room: %+v", eb)
	}
	setSettings(t, host, `{"moderatorsUnmuteOnly":true}`)
	bob.expect("room_settings")
	bob.send("ask_unmute", "a1", nil)
	if eb := bob.expectError(proto.CodeBadRequest); !strings.Contains(eb.Message, "no moderator muted") {
		t.Fatalf("not muted: %+v", eb)
	}

	host.send("mod_mute", "m", proto.ModMuteBody{Identity: "bob", Source: "microphone"})
	bob.expect("moderated")
	bob.send("ask_unmute", "a2", nil)
	m := bob.expect("unmute_asked")
	var ask proto.UnmuteAskedBody
	m.decode(t, &ask)
	if m.Re != "a2" || ask.Identity != "bob" {
		t.Fatalf("answer %s %+v", m.Re, ask)
	}
	host.expect("unmute_asked").decode(t, &ask)
	if ask.Identity != "bob" || ask.Name != "Bob" {
		t.Fatalf("moderators told %+v", ask)
	}
	// Once per 10 s.
	bob.send("ask_unmute", "a3", nil)
	bob.expectError(proto.CodeRateLimited)

	host.send("mod_allow_unmute", "u", proto.ModTargetBody{Identity: "bob"})
	bob.expect("moderated")
	bob.send("ask_unmute", "a4", nil)
	bob.expectError(proto.CodeBadRequest)
	// A moderator never needs to ask.
	host.send("ask_unmute", "a5", nil)
	host.expectError(proto.CodeBadRequest)
}

func TestReactions(t *testing.T) {
	env := startServer(t, nil)
	host, _ := env.joinHost("host", "r")
	bob, bj := env.join("bob", "r", allGrants)
	host.expect("participant_joined")

	bob.send("reaction", "r", proto.ReactionBody{Emoji: "👏"})
	for _, c := range []*client{host, bob} {
		var ev proto.ReactionEvent
		c.expect("reaction").decode(t, &ev)
		if ev.Identity != "bob" || ev.SID != bj.Participant.SID || ev.Name != "Bob" || ev.Emoji != "👏" {
			t.Fatalf("reaction %+v", ev)
		}
	}
	for _, bad := range []string{`{"emoji":"💩"}`, `{"emoji":""}`, `{"emoji":"👍👍"}`, `{}`, `{"emoji":"<img>"}`} {
		bob.sendRaw([]byte(`{"type":"reaction","id":"b","data":` + bad + `}`))
		bob.expectError(proto.CodeBadRequest)
	}
	// A burst, then about one a second.
	for range reactionBurst - 1 {
		bob.send("reaction", "r", proto.ReactionBody{Emoji: "🎉"})
		bob.expect("reaction")
	}
	bob.send("reaction", "r", proto.ReactionBody{Emoji: "🎉"})
	if eb := bob.expectError(proto.CodeRateLimited); !strings.Contains(eb.Message, "reaction") {
		t.Fatalf("refusal %+v", eb)
	}
}
