package cluster

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
)

// presenceOf waits for a presence message that changes what p shows of
// identity and returns the new status. A repeat of the status shown
// changes nothing a user sees (the cluster may tell a client twice: a
// change announced to a conversation and the same change introduced to
// it when it was new), so it is skipped.
func (p *wsPeer) presenceOf(identity string, limit time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			p.t.Fatalf("no presence of %s within %v", identity, limit)
		}
		m := p.next(left, "presence")
		var b struct{ Identity, Status string }
		decode(p.t, m, &b)
		if b.Identity == identity && p.show(identity, b.Status) {
			return b.Status
		}
	}
}

// show records status as what p shows of identity and reports whether
// that changed it (nothing shown counts as offline).
func (p *wsPeer) show(identity, status string) bool {
	if p.shown == nil {
		p.shown = map[string]string{}
	}
	was, ok := p.shown[identity]
	if !ok {
		was = "offline"
	}
	p.shown[identity] = status
	return status != was
}

// noPresenceOf fails if a presence message that changes what p shows of
// identity arrives within d.
func (p *wsPeer) noPresenceOf(identity string, d time.Duration) {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-p.in:
			if !ok {
				p.t.Fatal("connection closed")
			}
			var b struct{ Identity, Status string }
			if m.Type == "presence" && json.Unmarshal(m.Data, &b) == nil && b.Identity == identity && p.show(identity, b.Status) {
				p.t.Fatalf("unexpected presence of %s: %s", identity, b.Status)
			}
		case <-timer.C:
			return
		}
	}
}

func joined(t *testing.T, p *wsPeer, who string) *wsPeer {
	t.Helper()
	if ok, code, _ := p.joinResult(); !ok {
		t.Fatalf("%s's join: %s", who, code)
	}
	return p
}

// Presence and calls across two nodes, as Ada (on node A) sees Bob (on
// node B): online, a status change, offline; Bob on both nodes closing
// one stays online; a call from Ada rings Bob on B and his answer (an
// accept, then a decline) reaches her; and when B is SIGKILLed Bob goes
// offline for Ada within the lease. The nodes' ids make B win placement
// ties (the lowest id), so Bob's call room lands on his node.
func TestClusterPresenceAndCalls(t *testing.T) {
	env := newClusterEnv(t)
	nodeA := env.startNode(t, "n2")
	nodeB := env.startNode(t, "n1")
	chatOnly := auth.Grants{Chat: true}
	msgToken := func(who string) string { return clusterToken(t, who, "", chatOnly) }

	bob := joined(t, dialPeer(t, nodeB.URL, msgToken("bob")), "bob on B")
	ada := joined(t, dialPeer(t, nodeA.URL, msgToken("ada")), "ada on A")
	// A new direct conversation introduces its members' presence, read
	// from the merged view.
	ada.send("chat_direct", map[string]any{"identity": "bob"})
	if st := ada.presenceOf("bob", 10*time.Second); st != "online" {
		t.Fatalf("ada was told bob is %s, he is online on B", st)
	}
	// A new session's snapshot reads the merged view.
	ada.close()
	ada = joined(t, dialPeer(t, nodeA.URL, msgToken("ada")), "ada again on A")
	if st := ada.presenceOf("bob", 10*time.Second); st != "online" {
		t.Fatalf("ada's snapshot says bob is %s", st)
	}

	// Bob leaves and comes back.
	bob.close()
	if st := ada.presenceOf("bob", 10*time.Second); st != "offline" {
		t.Fatalf("bob left: ada sees %s", st)
	}
	bob = joined(t, dialPeer(t, nodeB.URL, msgToken("bob")), "bob back on B")
	if st := ada.presenceOf("bob", 10*time.Second); st != "online" {
		t.Fatalf("bob back: ada sees %s", st)
	}
	// Bob on both nodes: closing the one on A changes nothing for Ada.
	bobOnA := joined(t, dialPeer(t, nodeA.URL, msgToken("bob")), "bob on A too")
	ada.noPresenceOf("bob", time.Second)
	bobOnA.close()
	ada.noPresenceOf("bob", 2*time.Second)

	// A call from Ada on A rings Bob on B; he accepts there.
	ada.send("call", map[string]any{"to": "bob"})
	var ringing struct {
		CallID  string   `json:"callId"`
		Ringing []string `json:"ringing"`
	}
	decode(t, ada.next(10*time.Second, "call_ringing", "error"), &ringing)
	if len(ringing.Ringing) != 1 || ringing.Ringing[0] != "bob" {
		t.Fatalf("call_ringing %+v: bob, online on B, should ring", ringing)
	}
	var ring struct {
		CallID string `json:"callId"`
		Caller struct{ Identity string }
	}
	decode(t, bob.next(10*time.Second, "ring"), &ring)
	if ring.CallID != ringing.CallID || ring.Caller.Identity != "ada" {
		t.Fatalf("bob's ring %+v, call %s", ring, ringing.CallID)
	}
	accID := bob.send("call_accept", map[string]any{"callId": ring.CallID})
	var mine, theirs struct {
		CallID, Room, Token string
		Peer                struct{ Identity string }
	}
	m := bob.next(10*time.Second, "call_accepted", "error")
	if m.Re != accID {
		t.Fatalf("bob's accept answered by %s re %q, want re %q", m.Type, m.Re, accID)
	}
	decode(t, m, &mine)
	decode(t, ada.next(10*time.Second, "call_accepted"), &theirs)
	if mine.Room == "" || mine.Room != theirs.Room || theirs.Peer.Identity != "bob" || mine.Peer.Identity != "ada" || mine.Token == "" || theirs.Token == "" {
		t.Fatalf("accepted: bob %+v, ada %+v", mine, theirs)
	}
	// Bob joins the call room (on his node): Ada sees him in a call.
	bobCall := dialPeer(t, nodeB.URL, mine.Token)
	if ok, code, url := bobCall.joinResult(); !ok {
		t.Fatalf("bob's call join on B: %s %s", code, url)
	}
	if st := ada.presenceOf("bob", 10*time.Second); st != "in_call" {
		t.Fatalf("bob in the call: ada sees %s", st)
	}
	bobCall.close()
	if st := ada.presenceOf("bob", 10*time.Second); st != "online" {
		t.Fatalf("bob left the call: ada sees %s", st)
	}

	// A second call, which Bob declines on B.
	ada.send("call", map[string]any{"to": "bob"})
	decode(t, ada.next(10*time.Second, "call_ringing", "error"), &ringing)
	decode(t, bob.next(10*time.Second, "ring"), &ring)
	decID := bob.send("call_decline", map[string]any{"callId": ring.CallID})
	var ended struct{ CallID, Reason string }
	m = bob.next(10*time.Second, "call_ended", "error")
	decode(t, m, &ended)
	if m.Re != decID || ended.Reason != "declined" {
		t.Fatalf("bob's decline answered %s re %q %+v", m.Type, m.Re, ended)
	}
	decode(t, ada.next(10*time.Second, "call_ended"), &ended)
	if ended.CallID != ringing.CallID || ended.Reason != "declined" {
		t.Fatalf("ada's call ended %+v, want declined", ended)
	}

	// B dies: its lease (1 s here) lapses and A announces Bob offline.
	killed := time.Now()
	nodeB.Kill(t)
	if st := ada.presenceOf("bob", 10*time.Second); st != "offline" {
		t.Fatalf("after B's death ada sees bob %s", st)
	}
	took := time.Since(killed)
	t.Logf("bob offline for ada %v after node B was killed (lease_ttl 1s)", took)
	if took > 2*time.Second {
		t.Fatalf("bob went offline %v after his node died; the lease is 1 s", took)
	}
}
