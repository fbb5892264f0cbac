package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

func (c *cc) call(to string) proto.CallRingingBody {
	c.t.Helper()
	c.send(proto.TypeCall, "call-"+to, proto.CallBody{To: to})
	m := c.waitRe("call-" + to)
	if m.Type != proto.TypeCallRinging {
		c.t.Fatalf("call answered %s %s", m.Type, m.Data)
	}
	var b proto.CallRingingBody
	m.decode(c.t, &b)
	return b
}

func (c *cc) ring() proto.RingBody {
	c.t.Helper()
	var r proto.RingBody
	c.waitType(proto.TypeRing).decode(c.t, &r)
	return r
}

func (c *cc) ended(callID string) proto.CallEndedBody {
	c.t.Helper()
	m := c.waitFor("call_ended "+callID, func(m msg) bool {
		return m.Type == proto.TypeCallEnded && strings.Contains(string(m.Data), callID)
	})
	var b proto.CallEndedBody
	m.decode(c.t, &b)
	return b
}

// callEntry waits for the pushed history entry of a call.
func (c *cc) callEntry(callID string) proto.MessageView {
	c.t.Helper()
	m := c.waitFor("call entry "+callID, func(m msg) bool {
		return m.Type == proto.TypeMessage && strings.Contains(string(m.Data), callID)
	})
	var v proto.MessageView
	m.decode(c.t, &v)
	return v
}

func TestCallRingsEveryDeviceAndAcceptStopsTheOthers(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob1 := env.joinMessaging("bob")
	bob2 := env.joinMessaging("bob")
	r := alice.call("bob")
	if len(r.Ringing) != 1 || r.Ringing[0] != "bob" || r.CallID == "" || r.ConversationID == "" {
		t.Fatalf("ringing %+v", r)
	}
	for _, b := range []*cc{bob1, bob2} {
		ring := b.ring()
		if ring.CallID != r.CallID || ring.Caller.Identity != "alice" || ring.Caller.Name != "Alice" || ring.Kind != "direct" || ring.ConversationID != r.ConversationID || ring.TimeoutMs != 30000 {
			t.Fatalf("ring %+v", ring)
		}
	}
	bob1.send(proto.TypeCallAccept, "acc", proto.CallRefBody{CallID: r.CallID})
	var mine, theirs proto.CallAcceptedBody
	bob1.waitRe("acc").decode(t, &mine)
	alice.waitType(proto.TypeCallAccepted).decode(t, &theirs)
	if e := bob2.ended(r.CallID); e.Reason != proto.CallEndAnsweredElsewhere {
		t.Fatalf("second device: %+v", e)
	}
	if !strings.HasPrefix(mine.Room, "call-") || mine.Room != theirs.Room || mine.CallID != r.CallID {
		t.Fatalf("rooms %q %q", mine.Room, theirs.Room)
	}
	if mine.Peer.Identity != "alice" || theirs.Peer.Identity != "bob" {
		t.Fatalf("peers %+v %+v", mine.Peer, theirs.Peer)
	}
	for who, tok := range map[string]string{"bob": mine.Token, "alice": theirs.Token} {
		claims, err := env.keys.Verify(tok)
		if err != nil {
			t.Fatalf("%s token: %v", who, err)
		}
		if claims.Identity != who || claims.Room != mine.Room || !claims.Grants.Publish || !claims.Grants.Subscribe || !claims.Grants.Chat || claims.Grants.Admin {
			t.Fatalf("%s claims %+v", who, claims)
		}
		if ttl := time.Until(claims.ExpiresAt); ttl > 2*time.Minute+time.Second {
			t.Fatalf("%s token lives %s", who, ttl)
		}
	}
	// The call is over for the table: accepting again finds nothing.
	bob2.send(proto.TypeCallAccept, "acc2", proto.CallRefBody{CallID: r.CallID})
	bob2.waitError(proto.CodeNotFound)
	// Both can join the fresh room with their tokens.
	c := env.dialCC()
	c.send("join", "j", proto.JoinBody{Token: theirs.Token, Protocol: 1})
	var jb proto.JoinedBody
	c.waitType("joined").decode(t, &jb)
	if jb.Room != mine.Room || jb.ConversationID == "" {
		t.Fatalf("joined call room %+v", jb)
	}
	// Accepted calls leave no missed or declined entry.
	if got := env.storedEvents("alice", r.ConversationID); len(got) != 0 {
		t.Fatalf("history after an answered call: %v", got)
	}
}

func TestCallDeclineLeavesHistoryEntry(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob1 := env.joinMessaging("bob")
	bob2 := env.joinMessaging("bob")
	r := alice.call("bob")
	bob1.ring()
	bob2.ring()
	bob2.send(proto.TypeCallDecline, "dec", proto.CallRefBody{CallID: r.CallID})
	if m := bob2.waitRe("dec"); m.Type != proto.TypeCallEnded {
		t.Fatalf("decline answered %s %s", m.Type, m.Data)
	}
	if e := bob1.ended(r.CallID); e.Reason != proto.CallEndDeclinedElsewhere {
		t.Fatalf("other device %+v", e)
	}
	if e := alice.ended(r.CallID); e.Reason != proto.CallEndDeclined {
		t.Fatalf("caller %+v", e)
	}
	for _, c := range []*cc{alice, bob1} {
		v := c.callEntry(r.CallID)
		if v.Kind != string(chat.EventCallDeclined) || v.Sender.Identity != "alice" || v.ConversationID != r.ConversationID || v.Seq != 1 {
			t.Fatalf("entry %+v", v)
		}
	}
	got := env.storedEvents("bob", r.ConversationID)
	if len(got) != 1 || got[0].Kind != chat.EventCallDeclined || got[0].ClientMsgID != r.CallID {
		t.Fatalf("history %v", got)
	}
	if n := counterValue(t, env.reg, "parley_signaling_calls_total"); n != 1 {
		t.Fatalf("calls_total %v, want 1 (declined)", n)
	}
	if n := counterValue(t, env.reg, "parley_signaling_calls_ringing"); n != 0 {
		t.Fatalf("calls_ringing %v after the call ended", n)
	}
	if n := counterValue(t, env.reg, "parley_signaling_sessions"); n != 3 {
		t.Fatalf("sessions %v, want 3", n)
	}
}

func TestCallCancelByCaller(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	r := alice.call("bob")
	bob.ring()
	bob.send(proto.TypeCallCancel, "c0", proto.CallRefBody{CallID: r.CallID})
	bob.waitError(proto.CodeNotFound) // only the caller cancels
	alice.send(proto.TypeCallCancel, "c", proto.CallRefBody{CallID: r.CallID})
	if e := alice.ended(r.CallID); e.Reason != proto.CallEndCancelled {
		t.Fatalf("caller %+v", e)
	}
	if e := bob.ended(r.CallID); e.Reason != proto.CallEndCancelled {
		t.Fatalf("callee %+v", e)
	}
	if v := bob.callEntry(r.CallID); v.Kind != string(chat.EventCallMissed) {
		t.Fatalf("entry %+v", v)
	}
}

func TestCallBusyCallee(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bobMessaging := env.joinMessaging("bob")
	env.joinCC("bob", "standup", allGrants)
	r := alice.call("bob")
	if len(r.Ringing) != 0 || len(r.Busy) != 1 || r.Busy[0] != "bob" {
		t.Fatalf("ringing %+v", r)
	}
	if e := alice.ended(r.CallID); e.Reason != proto.CallEndBusy {
		t.Fatalf("caller %+v", e)
	}
	bobMessaging.none(proto.TypeRing, 100*time.Millisecond)
	if v := bobMessaging.callEntry(r.CallID); v.Kind != string(chat.EventCallMissed) {
		t.Fatalf("entry %+v", v)
	}
}

func TestCallOfflineCallee(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	r := alice.call("bob")
	if len(r.Offline) != 1 {
		t.Fatalf("ringing %+v", r)
	}
	if e := alice.ended(r.CallID); e.Reason != proto.CallEndOffline {
		t.Fatalf("caller %+v", e)
	}
	if v := alice.callEntry(r.CallID); v.Kind != string(chat.EventCallMissed) {
		t.Fatalf("entry %+v", v)
	}
}

func TestCallNoAnswerTimeout(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.CallRingTimeout = 150 * time.Millisecond }, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	r := alice.call("bob")
	if ring := bob.ring(); ring.TimeoutMs != 150 {
		t.Fatalf("ring %+v", ring)
	}
	if e := bob.ended(r.CallID); e.Reason != proto.CallEndNoAnswer {
		t.Fatalf("callee %+v", e)
	}
	if e := alice.ended(r.CallID); e.Reason != proto.CallEndNoAnswer {
		t.Fatalf("caller %+v", e)
	}
	v := bob.callEntry(r.CallID)
	if v.Kind != string(chat.EventCallMissed) || v.Sender.Identity != "alice" {
		t.Fatalf("entry %+v", v)
	}
	bob.send(proto.TypeCallAccept, "late", proto.CallRefBody{CallID: r.CallID})
	bob.waitError(proto.CodeNotFound)
}

func TestCallCallerDisconnectIsMissed(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	r := alice.call("bob")
	bob.ring()
	alice.close()
	if e := bob.ended(r.CallID); e.Reason != proto.CallEndCancelled {
		t.Fatalf("callee %+v", e)
	}
	if v := bob.callEntry(r.CallID); v.Kind != string(chat.EventCallMissed) {
		t.Fatalf("entry %+v", v)
	}
}

func TestCallLimits(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.MaxPendingCalls = 1 }, nil)
	alice := env.joinMessaging("alice")
	env.joinMessaging("bob")
	env.joinMessaging("carol")
	alice.call("bob")
	alice.send(proto.TypeCall, "second", proto.CallBody{To: "carol"})
	alice.waitError(proto.CodeCallLimit)
	alice.send(proto.TypeCall, "self", proto.CallBody{To: "alice"})
	alice.waitError(proto.CodeBadRequest)
	alice.send(proto.TypeCallAccept, "x", proto.CallRefBody{CallID: testUUID})
	alice.waitError(proto.CodeNotFound)
}

func TestGroupCall(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.CallRingTimeout = time.Second }, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	carol := env.joinMessaging("carol")
	dave := env.joinMessaging("dave")
	alice.send(proto.TypeChatGroup, "g", proto.ChatGroupBody{Title: "T", Members: []string{"bob", "carol", "dave"}})
	var gb proto.ConversationBody
	alice.waitRe("g").decode(t, &gb)
	for _, c := range []*cc{bob, carol, dave} {
		c.waitType(proto.TypeConversation)
	}
	alice.send(proto.TypeCall, "gc", proto.CallBody{ConversationID: gb.Conversation.ID})
	var r proto.CallRingingBody
	alice.waitRe("gc").decode(t, &r)
	if strings.Join(r.Ringing, ",") != "bob,carol,dave" {
		t.Fatalf("ringing %+v", r)
	}
	for _, c := range []*cc{bob, carol, dave} {
		if ring := c.ring(); ring.Kind != "group" || ring.ConversationID != gb.Conversation.ID {
			t.Fatalf("ring %+v", ring)
		}
	}
	bob.send(proto.TypeCallAccept, "a1", proto.CallRefBody{CallID: r.CallID})
	var b1 proto.CallAcceptedBody
	bob.waitRe("a1").decode(t, &b1)
	var ac proto.CallAcceptedBody
	alice.waitType(proto.TypeCallAccepted).decode(t, &ac)
	carol.send(proto.TypeCallAccept, "a2", proto.CallRefBody{CallID: r.CallID})
	var c1 proto.CallAcceptedBody
	carol.waitRe("a2").decode(t, &c1)
	if b1.Room != ac.Room || c1.Room != ac.Room {
		t.Fatalf("group call rooms differ: %q %q %q", ac.Room, b1.Room, c1.Room)
	}
	// Dave never answers: his ring times out into a missed entry in his
	// direct conversation with the caller; the caller is not told
	// "no_answer" because others answered.
	if e := dave.ended(r.CallID); e.Reason != proto.CallEndNoAnswer {
		t.Fatalf("dave %+v", e)
	}
	if v := dave.callEntry(r.CallID); v.Kind != string(chat.EventCallMissed) {
		t.Fatalf("entry %+v", v)
	}
	alice.noneFn("no_answer to the caller", func(m msg) bool {
		return m.Type == proto.TypeCallEnded && strings.Contains(string(m.Data), proto.CallEndNoAnswer)
	}, 100*time.Millisecond)
}

// TestCallShutdownWhileRinging checks that Run returns (the cleanup fails
// the test otherwise) with a ring timer pending.
func TestCallShutdownWhileRinging(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	alice.call("bob")
	bob.ring()
	env.stop()
	if n := env.srv.calls.pending(); n != 0 {
		t.Fatalf("%d calls left after shutdown", n)
	}
}
