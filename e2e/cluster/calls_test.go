package cluster

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/auth"
)

// callEnded is a call_ended message's body.
type callEndedBody struct{ CallID, Reason, Identity string }

// ringingOf places a call from p with data and returns its call_ringing.
func ringingOf(t *testing.T, p *wsPeer, data map[string]any) (callID string, ringing []string) {
	t.Helper()
	p.send("call", data)
	var r struct {
		CallID  string   `json:"callId"`
		Ringing []string `json:"ringing"`
	}
	m := p.next(10*time.Second, "call_ringing", "error")
	if m.Type != "call_ringing" {
		t.Fatalf("call %v answered %s %s", data, m.Type, m.Data)
	}
	decode(t, m, &r)
	return r.CallID, r.Ringing
}

// endedOf waits for p's call_ended and returns it with its re.
func endedOf(t *testing.T, p *wsPeer) (callEndedBody, string) {
	t.Helper()
	m := p.next(10*time.Second, "call_ended", "error")
	if m.Type != "call_ended" {
		t.Fatalf("want call_ended, got %s %s", m.Type, m.Data)
	}
	var b callEndedBody
	decode(t, m, &b)
	return b, m.Re
}

// Ada calls Bob from her laptop on node A, where Bob is too, and hangs
// up from her phone on node B, which no ring of that call reached: the
// cancel is passed to A, Bob stops ringing, and both of Ada's devices
// hear that the call is cancelled (the phone as the reply).
func TestClusterCallCancelFromOtherNode(t *testing.T) {
	env := newClusterEnv(t)
	nodeA := env.startNode(t, "a")
	nodeB := env.startNode(t, "b")
	tok := func(who string) string { return clusterToken(t, who, "", auth.Grants{Chat: true}) }

	bob := joined(t, dialPeer(t, nodeA.URL, tok("bob")), "bob on A")
	laptop := joined(t, dialPeer(t, nodeA.URL, tok("ada")), "ada's laptop on A")
	phone := joined(t, dialPeer(t, nodeB.URL, tok("ada")), "ada's phone on B")

	callID, ringing := ringingOf(t, laptop, map[string]any{"to": "bob"})
	if len(ringing) != 1 || ringing[0] != "bob" {
		t.Fatalf("call_ringing %v, want bob", ringing)
	}
	bob.next(10*time.Second, "ring")
	time.Sleep(200 * time.Millisecond) // the call's placement reaches B on the bus

	re := phone.send("call_cancel", map[string]any{"callId": callID})
	got, gotRe := endedOf(t, phone)
	if gotRe != re || got.CallID != callID || got.Reason != "cancelled" {
		t.Fatalf("the phone's cancel answered re %q %+v, want re %q cancelled", gotRe, got, re)
	}
	if got, _ := endedOf(t, bob); got.CallID != callID || got.Reason != "cancelled" {
		t.Fatalf("bob's ring ended %+v, want cancelled", got)
	}
	if got, _ := endedOf(t, laptop); got.CallID != callID || got.Reason != "cancelled" {
		t.Fatalf("the laptop's call ended %+v, want cancelled", got)
	}
}
