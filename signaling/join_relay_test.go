package signaling

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/proto"
)

// relayPair starts the hosting node (host: every room is placed there,
// but "moved", which it believes hosted at the front door) and a front
// door whose placer sends every room to hostURL(host); cfg, if not nil,
// changes both nodes' configuration.
func relayPair(t testing.TB, cfg func(*Config), hostURL func(host *testEnv) string) (front, host *testEnv) {
	t.Helper()
	var frontBase string
	host = startServerDeps(t, cfg, func(d *Deps) {
		d.RelayJoins = true
		d.Placer = placerFunc(func(_ context.Context, room string) (string, error) {
			if room == "moved" {
				return frontBase, nil
			}
			return "", nil
		})
	})
	target := hostURL(host)
	front = startServerDeps(t, cfg, func(d *Deps) {
		d.RelayJoins = true
		d.Placer = placerFunc(func(context.Context, string) (string, error) { return target, nil })
	})
	frontBase = front.base
	return front, host
}

// participantEvent waits for a participant_joined or _left of identity.
func participantEvent(t *testing.T, c *client, typ, identity string) {
	t.Helper()
	for range 50 {
		m, err := c.next(false)
		if err != nil {
			t.Fatalf("waiting for %s of %s: %v", typ, identity, err)
		}
		if m.Type != typ {
			continue
		}
		var v struct {
			Identity    string                `json:"identity"` // participant_left
			Participant proto.ParticipantView `json:"participant"`
		}
		if json.Unmarshal(m.Data, &v) == nil && cmp.Or(v.Identity, v.Participant.Identity) == identity {
			return
		}
	}
	t.Fatalf("no %s of %s in 50 messages", typ, identity)
}

// With cluster.relay_signaling, a join on a node that does not host the
// room is served by the hosting node through it: the client gets the
// hosting node's "joined", sees and is seen by the participants there,
// and leaving through the front door leaves the room there.
func TestJoinRelay(t *testing.T) {
	front, host := relayPair(t, nil, func(h *testEnv) string { return h.base })

	bob, _ := host.join("bob", "r1", allGrants)
	ada, jb := front.join("ada", "r1", allGrants)
	if len(jb.Participants) != 1 || jb.Participants[0].Identity != "bob" {
		t.Fatalf("ada's joined through the relay lists %+v, want bob (the hosting node's room)", jb.Participants)
	}
	participantEvent(t, bob, proto.TypeParticipantJoined, "ada")
	if host.media.peer(t, jb.Participant.SID) == nil {
		t.Fatal("ada's media peer is not on the hosting node")
	}
	if n := counterValue(t, front.reg, "parley_signaling_relayed_sessions"); n != 1 {
		t.Fatalf("front door relays %v sessions, want 1", n)
	}
	if n := counterValue(t, host.reg, "parley_signaling_relayed_sessions"); n != 0 {
		t.Fatalf("the hosting node relays %v sessions, want 0", n)
	}

	// The hosting node's requests and events pass both ways: bob's leave
	// reaches ada, her request is answered there.
	yes := true
	bob.send(proto.TypeLeave, "", nil)
	participantEvent(t, ada, proto.TypeParticipantLeft, "bob")
	ada.send(proto.TypeMute, "m1", proto.MuteBody{TrackID: "TR_none", Muted: &yes})
	m := ada.expect(proto.TypeError)
	if m.Re != "m1" {
		t.Fatalf("answer to the relayed mute re %q, want m1", m.Re)
	}

	// The hosting node removes dan (an admin's removal): its bye and
	// close code reach him through the relay unchanged.
	dan, _ := front.join("dan", "r1", allGrants)
	if code, body := host.admin("DELETE", "/api/admin/rooms/r1/participants/dan", ""); code != http.StatusNoContent {
		t.Fatalf("remove dan on the hosting node: %d %s", code, body)
	}
	dan.expectBye(proto.ByeRemoved)
	dan.expectClose(websocket.CloseNormalClosure)

	// ada closes her socket to the front door: she leaves the room on the
	// hosting node, and the front door's relay ends.
	carol, _ := host.join("carol", "r1", allGrants)
	_ = ada.ws.Close()
	participantEvent(t, carol, proto.TypeParticipantLeft, "ada")
	waitUntil(t, "the relay to end", func() bool { return counterValue(t, front.reg, "parley_signaling_relayed_sessions") == 0 })
}

// A join relayed to a node that does not host the room either (the two
// disagreed for a moment) is refused there as retryable, not relayed
// back; a front door that cannot reach the hosting node refuses it the
// same way.
func TestJoinRelayRefusals(t *testing.T) {
	front, _ := relayPair(t, nil, func(h *testEnv) string { return h.base })
	c := front.mustDial()
	c.send("join", "j", proto.JoinBody{Token: front.token("ada", "moved", allGrants), Protocol: 1})
	var eb proto.ErrorBody
	m := c.expect(proto.TypeError)
	m.decode(t, &eb)
	if eb.Code != proto.CodeUnavailable || m.Re != "j" {
		t.Fatalf("join bounced between nodes: %s re %q, want unavailable for j", m.Data, m.Re)
	}

	dead, _ := relayPair(t, nil, func(*testEnv) string { return "http://127.0.0.1:1" })
	c = dead.mustDial()
	c.send("join", "j", proto.JoinBody{Token: dead.token("ada", "r1", allGrants), Protocol: 1})
	eb = proto.ErrorBody{}
	c.expect(proto.TypeError).decode(t, &eb)
	if eb.Code != proto.CodeUnavailable {
		t.Fatalf("join towards an unreachable node: %+v, want unavailable", eb)
	}
	_, err := c.next(false)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
		t.Fatalf("after the refusal: %v, want close 1013 (try again later)", err)
	}
	if n := counterValue(t, dead.reg, "parley_signaling_relay_failures_total"); n != 1 {
		t.Fatalf("relay failures %v, want 1", n)
	}
}

// A hosting node lost without a close (its connection cut, or silent)
// makes the front door tell the client to rejoin at once (bye
// "reconnect"), within the ping timeout for a silent one.
func TestJoinRelayHostLost(t *testing.T) {
	for _, mode := range []string{"cut", "silent"} {
		t.Run(mode, func(t *testing.T) {
			var px *testkit.FreezeProxy
			front, host := relayPair(t, func(c *Config) {
				c.PingInterval = 100 * time.Millisecond
				c.PingTimeout = time.Second
			}, func(h *testEnv) string {
				px = testkit.StartFreezeProxy(t, h.srv.Addr().String())
				return "http://" + px.Addr()
			})
			ada, _ := front.join("ada", "r1", allGrants)
			host.join("bob", "r1", allGrants)
			participantEvent(t, ada, proto.TypeParticipantJoined, "bob")
			start := time.Now()
			if mode == "cut" {
				px.Reset() // closes the connections through it
			} else {
				px.Freeze()
			}
			var bb proto.ByeBody
			ada.expect(proto.TypeBye).decode(t, &bb)
			if bb.Reason != proto.ByeReconnect {
				t.Fatalf("bye %q after the hosting node was lost, want reconnect", bb.Reason)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("the loss was noticed after %v (ping timeout 1 s)", d)
			}
		})
	}
}

// waitUntil polls cond for up to waitLimit.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
