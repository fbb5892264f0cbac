package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
)

// A group whose members are on two nodes: Ada on A makes it with Bob
// and Carol, both connected to B since before it existed. Ada's new
// session on A shows both online in its snapshot; her group call rings
// both on B; Bob's accept there gives both of them the call room, and
// Carol's decline reaches Ada with her name.
func TestClusterGroupPresenceAndCalls(t *testing.T) {
	env := newClusterEnv(t)
	nodeA := env.startNode(t, "a")
	nodeB := env.startNode(t, "b")
	tok := func(who string) string { return clusterToken(t, who, "", auth.Grants{Chat: true}) }

	bob := joined(t, dialPeer(t, nodeB.URL, tok("bob")), "bob on B")
	carol := joined(t, dialPeer(t, nodeB.URL, tok("carol")), "carol on B")
	ada := joined(t, dialPeer(t, nodeA.URL, tok("ada")), "ada on A")
	re := ada.send("chat_group", map[string]any{"title": "team", "members": []string{"bob", "carol"}})
	m := ada.next(10*time.Second, "conversation", "error")
	if m.Type != "conversation" || m.Re != re {
		t.Fatalf("chat_group answered %s re %q: %s", m.Type, m.Re, m.Data)
	}
	var group struct{ Conversation struct{ ID string } }
	decode(t, m, &group)

	ada.close()
	ada = joined(t, dialPeer(t, nodeA.URL, tok("ada")), "ada again on A")
	for _, who := range []string{"bob", "carol"} {
		if st := ada.presenceOf(who, 10*time.Second); st != "online" {
			t.Fatalf("ada's snapshot says %s is %s, want online (on B)", who, st)
		}
	}

	callID, ringing := ringingOf(t, ada, map[string]any{"conversationId": group.Conversation.ID})
	if !slices.Equal(ringing, []string{"bob", "carol"}) {
		t.Fatalf("ada's group call rings %v, want bob and carol (on B)", ringing)
	}
	for _, callee := range []*wsPeer{bob, carol} {
		var ring struct {
			CallID string `json:"callId"`
			Kind   string
		}
		decode(t, callee.next(10*time.Second, "ring"), &ring)
		if ring.CallID != callID || ring.Kind != "group" {
			t.Fatalf("ring %+v, call %s", ring, callID)
		}
	}
	accID := bob.send("call_accept", map[string]any{"callId": callID})
	m = bob.next(10*time.Second, "call_accepted", "error")
	var mine, theirs struct{ Room, Token string }
	if m.Type != "call_accepted" || m.Re != accID {
		t.Fatalf("bob's accept answered %s re %q", m.Type, m.Re)
	}
	decode(t, m, &mine)
	decode(t, ada.next(10*time.Second, "call_accepted"), &theirs)
	if mine.Room == "" || mine.Room != theirs.Room || mine.Token == "" || theirs.Token == "" {
		t.Fatalf("accepted: bob %+v, ada %+v", mine, theirs)
	}
	decID := carol.send("call_decline", map[string]any{"callId": callID})
	if got, re := endedOf(t, carol); re != decID || got.Reason != "declined" {
		t.Fatalf("carol's decline answered re %q %+v", re, got)
	}
	if got, _ := endedOf(t, ada); got.CallID != callID || got.Reason != "declined" || got.Identity != "carol" {
		t.Fatalf("ada heard %+v, want carol declined", got)
	}
}
