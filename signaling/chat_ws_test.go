package signaling

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

func TestMessagingSessionJoin(t *testing.T) {
	env := startChatServer(t, nil, nil)
	a := env.joinMessaging("alice")
	if a.joined.Room != "" || a.joined.Participant.Identity != "alice" || !a.joined.Grants.Chat || a.joined.Participant.SID == "" {
		t.Fatalf("joined %+v", a.joined)
	}
	// Media messages need a call session.
	a.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "t", Kind: "video", Source: "camera"}}})
	a.waitError(proto.CodeNotInCall)
	// A call join is also a messaging session and joins the room's chat.
	c := env.joinCC("alice", "standup", allGrants)
	if c.joined.Room != "standup" || c.joined.ConversationID == "" {
		t.Fatalf("call joined %+v", c.joined)
	}
	// Without the chat grant a call join has no room conversation.
	n := env.joinCC("nochat", "standup", auth.Grants{Subscribe: true})
	if n.joined.ConversationID != "" {
		t.Fatalf("room conversation without chat grant: %+v", n.joined)
	}
	n.send(proto.TypeChatHistory, "h", proto.ChatHistoryBody{ConversationID: c.joined.ConversationID})
	n.waitError(proto.CodeForbidden)
}

func TestMessagingSessionWithoutChat(t *testing.T) {
	env := startServer(t, nil)
	c := env.mustDial()
	c.send("join", "j", proto.JoinBody{Token: env.token("alice", "", chatOnly), Protocol: 1})
	c.expectError(proto.CodeUnavailable)
	c.expectClose(websocket.ClosePolicyViolation)

	call, _ := env.join("bob", "r", allGrants)
	call.send(proto.TypeChatSend, "1", proto.ChatSendBody{ConversationID: "c", ClientMsgID: testUUID, Text: "hi"})
	call.expectError(proto.CodeUnavailable)
}

func TestMessagingSessionLimit(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.MaxSessionsPerIdentity = 2 }, nil)
	env.joinMessaging("alice")
	env.joinMessaging("alice")
	c := env.dialCC()
	c.send("join", "j", proto.JoinBody{Token: env.token("alice", "", chatOnly), Protocol: 1})
	c.waitError(proto.CodeTooManySessions)
}

func TestChatSendAckAfterDurableWrite(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice1 := env.joinMessaging("alice")
	alice2 := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	conv := alice1.direct("bob")
	if conv.Kind != "direct" || conv.Peer != "bob" {
		t.Fatalf("direct %+v", conv)
	}
	// Bob's session learns of the new conversation.
	var cb proto.ConversationBody
	bob.waitType(proto.TypeConversation).decode(t, &cb)
	if cb.Conversation.ID != conv.ID || cb.Conversation.Peer != "alice" {
		t.Fatalf("bob's conversation %+v", cb.Conversation)
	}

	cid := newClientID()
	ack := alice1.sendText(conv.ID, cid, "hello bob")
	if ack.Seq != 1 || ack.ClientMsgID != cid || ack.ServerID == "" || ack.CreatedAt == 0 || ack.Duplicate {
		t.Fatalf("ack %+v", ack)
	}
	// The ack means stored: the message is in the store now.
	got := env.storedEvents("alice", conv.ID)
	if len(got) != 1 || got[0].Seq != 1 || got[0].Text != "hello bob" || got[0].ServerID != ack.ServerID {
		t.Fatalf("store after ack: %v", got)
	}
	for name, c := range map[string]*cc{"bob": bob, "alice's second device": alice2} {
		m := c.nextMessage()
		if m.Seq != 1 || m.Text != "hello bob" || m.Sender.Identity != "alice" || m.Sender.Name != "Alice" || m.ClientMsgID != cid || m.Kind != "text" {
			t.Fatalf("%s got %+v", name, m)
		}
	}
	// A retry returns the original ack and stores nothing new.
	again := alice1.sendText(conv.ID, cid, "hello bob")
	if again.Seq != 1 || again.ServerID != ack.ServerID || !again.Duplicate {
		t.Fatalf("retry ack %+v, original %+v", again, ack)
	}
	if got := env.storedEvents("alice", conv.ID); len(got) != 1 {
		t.Fatalf("%d events after retry", len(got))
	}
	// The same id with other text is a conflict, not a second message.
	alice1.send(proto.TypeChatSend, "x", proto.ChatSendBody{ConversationID: conv.ID, ClientMsgID: cid, Text: "other"})
	alice1.waitError(proto.CodeConflict)
	// Nothing else was pushed for the retry: the next push is seq 2.
	alice1.sendText(conv.ID, newClientID(), "second")
	if m := bob.nextMessage(); m.Seq != 2 {
		t.Fatalf("bob's next push has seq %d, want 2", m.Seq)
	}
}

func TestChatEditDeleteAndHistory(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.ChatPageMax = 3 }, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	conv := alice.direct("bob")
	for i := range 4 {
		alice.sendText(conv.ID, newClientID(), strings.Repeat("x", i+1))
	}
	alice.send(proto.TypeChatEdit, "e", proto.ChatEditBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 1, Text: "edited"})
	if m := alice.waitRe("e"); m.Type != proto.TypeChatAck {
		t.Fatalf("edit: %s %s", m.Type, m.Data)
	}
	bob.send(proto.TypeChatEdit, "e2", proto.ChatEditBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 1, Text: "not mine"})
	bob.waitError(proto.CodeForbidden)
	alice.send(proto.TypeChatDelete, "d", proto.ChatDeleteBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 2})
	alice.waitRe("d")
	var seen []proto.MessageView
	for len(seen) < 6 {
		seen = append(seen, bob.nextMessage())
	}
	if seen[4].Kind != "edit" || seen[4].TargetSeq != 1 || seen[5].Kind != "delete" || seen[5].TargetSeq != 2 || seen[5].Seq != 6 {
		t.Fatalf("edit/delete pushes %+v", seen[4:])
	}
	// Scroll back page by page: newest first, three at a time.
	bob.send(proto.TypeChatHistory, "h1", proto.ChatHistoryBody{ConversationID: conv.ID})
	var p proto.ChatPageBody
	bob.waitRe("h1").decode(t, &p)
	if len(p.Messages) != 3 || p.Messages[0].Seq != 6 || p.Messages[2].Seq != 4 || !p.More {
		t.Fatalf("history page 1 %+v", p)
	}
	bob.send(proto.TypeChatHistory, "h2", proto.ChatHistoryBody{ConversationID: conv.ID, BeforeSeq: 4})
	bob.waitRe("h2").decode(t, &p)
	if len(p.Messages) != 3 || p.Messages[0].Seq != 3 || p.Messages[2].Seq != 1 || p.More {
		t.Fatalf("history page 2 %+v", p)
	}
	bob.send(proto.TypeChatHistory, "h3", proto.ChatHistoryBody{ConversationID: conv.ID, Limit: 4})
	bob.waitError(proto.CodeBadRequest)
}

func TestChatRangeRefillsGap(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	conv := alice.direct("bob")
	alice.sendText(conv.ID, newClientID(), "one")
	if m := bob.nextMessage(); m.Seq != 1 {
		t.Fatalf("seq %d", m.Seq)
	}
	// Seq 2 is stored without a push reaching bob (as if its push was
	// lost), so bob's next push jumps from 1 to 3.
	if _, err := env.svc.Send(t.Context(), chat.Identity{ID: "alice", Name: "Alice"}, conv.ID, newClientID(), "two"); err != nil {
		t.Fatal(err)
	}
	alice.sendText(conv.ID, newClientID(), "three")
	m := bob.nextMessage()
	if m.Seq != 3 {
		t.Fatalf("expected the jump to seq 3, got %d", m.Seq)
	}
	bob.send(proto.TypeChatRange, "r", proto.ChatRangeBody{ConversationID: conv.ID, AfterSeq: 1})
	var p proto.ChatPageBody
	bob.waitRe("r").decode(t, &p)
	if len(p.Messages) != 2 || p.Messages[0].Seq != 2 || p.Messages[0].Text != "two" || p.Messages[1].Seq != 3 || p.More {
		t.Fatalf("range %+v", p)
	}
}

func TestChatSyncAfterOffline(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	conv := alice.direct("bob")
	alice.sendText(conv.ID, newClientID(), "m1")
	bob.nextMessage()
	bob.send(proto.TypeChatReceipt, "rc", proto.ChatReceiptBody{ConversationID: conv.ID, Read: 1})
	bob.waitRe("rc")
	bob.close()

	var texts []string
	for i := 2; i <= 6; i++ {
		text := "m" + string(rune('0'+i))
		texts = append(texts, text)
		alice.sendText(conv.ID, newClientID(), text)
	}
	bob = env.joinMessaging("bob")
	bob.send(proto.TypeChatSync, "s", proto.ChatSyncBody{LastSeqs: map[string]int64{conv.ID: 1, "gone-conversation": 3}, Limit: 3})
	var sb proto.ChatSyncedBody
	bob.waitRe("s").decode(t, &sb)
	if len(sb.Conversations) != 1 || len(sb.Gone) != 1 || sb.Gone[0] != "gone-conversation" {
		t.Fatalf("synced %+v", sb)
	}
	sc := sb.Conversations[0]
	if sc.Conversation.ID != conv.ID || sc.Conversation.Unread != 5 || sc.Conversation.LastSeq != 6 || sc.Conversation.Read != 1 || !sc.More {
		t.Fatalf("conversation %+v more=%v", sc.Conversation, sc.More)
	}
	var got []string
	last := int64(1)
	for _, m := range sc.Messages {
		if m.Seq != last+1 {
			t.Fatalf("seq %d after %d", m.Seq, last)
		}
		last = m.Seq
		got = append(got, m.Text)
	}
	// The rest of the page comes by range from the last seq.
	bob.send(proto.TypeChatRange, "r", proto.ChatRangeBody{ConversationID: conv.ID, AfterSeq: last})
	var p proto.ChatPageBody
	bob.waitRe("r").decode(t, &p)
	for _, m := range p.Messages {
		if m.Seq != last+1 {
			t.Fatalf("seq %d after %d", m.Seq, last)
		}
		last = m.Seq
		got = append(got, m.Text)
	}
	if strings.Join(got, ",") != strings.Join(texts, ",") {
		t.Fatalf("caught up %v, want %v", got, texts)
	}
	// After reading everything, unread drops to zero.
	bob.send(proto.TypeChatReceipt, "rc2", proto.ChatReceiptBody{ConversationID: conv.ID, Read: 6})
	bob.waitRe("rc2")
	bob.send(proto.TypeChatSync, "s2", proto.ChatSyncBody{LastSeqs: map[string]int64{conv.ID: 6}})
	bob.waitRe("s2").decode(t, &sb)
	if sb.Conversations[0].Conversation.Unread != 0 || len(sb.Conversations[0].Messages) != 0 {
		t.Fatalf("after read: %+v", sb.Conversations[0])
	}
}

func TestChatReceiptsAreMonotonicAndNotifySender(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	conv := alice.direct("bob")
	for range 3 {
		alice.sendText(conv.ID, newClientID(), "hi")
	}
	receipt := func(id string, delivered, read int64) proto.WatermarksBody {
		t.Helper()
		bob.send(proto.TypeChatReceipt, id, proto.ChatReceiptBody{ConversationID: conv.ID, Delivered: delivered, Read: read})
		m := bob.waitRe(id)
		if m.Type != proto.TypeChatWatermarks {
			t.Fatalf("receipt answered %s %s", m.Type, m.Data)
		}
		var w proto.WatermarksBody
		m.decode(t, &w)
		return w
	}
	senderSees := func() proto.WatermarksBody {
		t.Helper()
		var w proto.WatermarksBody
		alice.waitType(proto.TypeChatReceipt).decode(t, &w)
		return w
	}
	if w := receipt("1", 2, 0); w.Delivered != 2 || w.Read != 0 {
		t.Fatalf("after delivered 2: %+v", w)
	}
	if w := senderSees(); w.Identity != "bob" || w.Delivered != 2 || w.Read != 0 || w.ConversationID != conv.ID {
		t.Fatalf("sender saw %+v", w)
	}
	// Going backwards changes nothing and tells nobody.
	if w := receipt("2", 1, 0); w.Delivered != 2 {
		t.Fatalf("delivered went back: %+v", w)
	}
	// Read implies delivered.
	if w := receipt("3", 0, 3); w.Delivered != 3 || w.Read != 3 {
		t.Fatalf("after read 3: %+v", w)
	}
	if w := senderSees(); w.Read != 3 || w.Delivered != 3 {
		t.Fatalf("sender saw %+v (the backwards receipt must not be forwarded)", w)
	}
	bob.send(proto.TypeChatReceipt, "4", proto.ChatReceiptBody{ConversationID: conv.ID, Read: 99})
	bob.waitError(proto.CodeBadRequest)
}

func TestChatTypingAndRateLimit(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.TypingRatePerSecond = 0.01 }, nil)
	alice := env.joinMessaging("alice")
	alice2 := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	carol := env.joinMessaging("carol")
	conv := alice.direct("bob")
	for range typingBurst {
		alice.send(proto.TypeTyping, "", proto.TypingBody{ConversationID: conv.ID})
	}
	var tb proto.TypingEventBody
	bob.waitType(proto.TypeTyping).decode(t, &tb)
	if tb.Identity != "alice" || tb.ConversationID != conv.ID || tb.Name != "Alice" {
		t.Fatalf("typing %+v", tb)
	}
	alice.send(proto.TypeTyping, "t4", proto.TypingBody{ConversationID: conv.ID})
	if eb := alice.waitError(proto.CodeRateLimited); !strings.Contains(eb.Message, "typing") {
		t.Fatalf("message %q", eb.Message)
	}
	alice2.none(proto.TypeTyping, 100*time.Millisecond) // own devices are not told
	carol.send(proto.TypeTyping, "c", proto.TypingBody{ConversationID: conv.ID})
	carol.waitError(proto.CodeForbidden)
}

func TestChatSendRateLimit(t *testing.T) {
	env := startChatServer(t, func(c *Config) { c.ChatRatePerSecond, c.ChatRateBurst = 1, 3 }, nil)
	alice := env.joinMessaging("alice")
	conv := alice.direct("bob") // a write: one token of the burst of 3
	alice.sendText(conv.ID, newClientID(), "1")
	alice.sendText(conv.ID, newClientID(), "2")
	alice.send(proto.TypeChatSend, "3", proto.ChatSendBody{ConversationID: conv.ID, ClientMsgID: newClientID(), Text: "3"})
	alice.waitError(proto.CodeRateLimited)
	if got := env.storedEvents("alice", conv.ID); len(got) != 2 {
		t.Fatalf("%d stored, want 2", len(got))
	}
}

func TestChatTooLargeKeepsConnection(t *testing.T) {
	env := startChatServer(t, nil, func(c *chat.Config) { c.MaxMessageBytes = 64 })
	alice := env.joinMessaging("alice")
	conv := alice.direct("bob")
	alice.send(proto.TypeChatSend, "big", proto.ChatSendBody{ConversationID: conv.ID, ClientMsgID: newClientID(), Text: strings.Repeat("a", 65)})
	if m := alice.waitRe("big"); m.Type != "error" || !strings.Contains(string(m.Data), proto.CodeTooLarge) {
		t.Fatalf("oversized message answered %s %s", m.Type, m.Data)
	}
	if ack := alice.sendText(conv.ID, newClientID(), strings.Repeat("a", 64)); ack.Seq != 1 {
		t.Fatalf("after too_large: %+v", ack)
	}
}

func TestChatNonMemberForbidden(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	carol := env.joinMessaging("carol")
	conv := alice.direct("bob")
	alice.sendText(conv.ID, newClientID(), "private")
	for _, tc := range []struct {
		typ  string
		body any
	}{
		{proto.TypeChatSend, proto.ChatSendBody{ConversationID: conv.ID, ClientMsgID: newClientID(), Text: "hi"}},
		{proto.TypeChatHistory, proto.ChatHistoryBody{ConversationID: conv.ID}},
		{proto.TypeChatRange, proto.ChatRangeBody{ConversationID: conv.ID}},
		{proto.TypeChatReceipt, proto.ChatReceiptBody{ConversationID: conv.ID, Read: 1}},
		{proto.TypeChatReact, proto.ChatReactBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 1, Emoji: "👍"}},
		{proto.TypeCall, proto.CallBody{ConversationID: conv.ID}},
	} {
		carol.send(tc.typ, tc.typ, tc.body)
		if m := carol.waitRe(tc.typ); m.Type != "error" || !strings.Contains(string(m.Data), proto.CodeForbidden) {
			t.Fatalf("%s by non-member answered %s %s", tc.typ, m.Type, m.Data)
		}
	}
	// A call session without the chat grant may not chat either.
	nc := env.joinCC("dave", "r", auth.Grants{Publish: true})
	nc.send(proto.TypeChatDirect, "d", proto.ChatDirectBody{Identity: "alice"})
	nc.waitError(proto.CodeForbidden)
}

func TestChatGroupAndRoomPush(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	alice.send(proto.TypeChatGroup, "g", proto.ChatGroupBody{Title: "Team", Members: []string{"bob", "carol"}})
	var gb proto.ConversationBody
	alice.waitRe("g").decode(t, &gb)
	if gb.Conversation.Kind != "group" || gb.Conversation.Title != "Team" {
		t.Fatalf("group %+v", gb)
	}
	bob.waitType(proto.TypeConversation)
	alice.sendText(gb.Conversation.ID, newClientID(), "team hello")
	if m := bob.nextMessage(); m.ConversationID != gb.Conversation.ID || m.Text != "team hello" {
		t.Fatalf("group push %+v", m)
	}
	// Carol was offline; she sees the group in her sync.
	carol := env.joinMessaging("carol")
	carol.send(proto.TypeChatSync, "s", proto.ChatSyncBody{})
	var sb proto.ChatSyncedBody
	carol.waitRe("s").decode(t, &sb)
	if len(sb.Conversations) != 1 || sb.Conversations[0].Conversation.Unread != 1 {
		t.Fatalf("carol synced %+v", sb)
	}

	// Room chat: both participants of a call are members.
	r1 := env.joinCC("ann", "standup", allGrants)
	r2 := env.joinCC("ben", "standup", allGrants)
	if r1.joined.ConversationID == "" || r1.joined.ConversationID != r2.joined.ConversationID {
		t.Fatalf("room conversations %q %q", r1.joined.ConversationID, r2.joined.ConversationID)
	}
	// Pushes are guaranteed from the client's first request after joined
	// on (earlier messages come with chat_sync), so ben syncs first.
	r2.send(proto.TypeChatSync, "s2", proto.ChatSyncBody{})
	r2.waitRe("s2")
	r1.sendText(r1.joined.ConversationID, newClientID(), "room hello")
	if m := r2.nextMessage(); m.Text != "room hello" || m.Sender.Identity != "ann" {
		t.Fatalf("room push %+v", m)
	}
}

// TestChatNetworkCutBetweenWriteAndAck drops the connection after the
// message is durable but before its ack is written. The client never saw
// an ack, reconnects and retries with the same client message id: it gets
// the original seq and the conversation holds the message exactly once.
func TestChatNetworkCutBetweenWriteAndAck(t *testing.T) {
	env := startChatServer(t, nil, nil)
	var cut atomic.Bool
	env.srv.hooks.afterChatSend = func(c *chatSession) {
		if cut.CompareAndSwap(false, true) {
			_ = c.ss.out.(*wsConn).ws.NetConn().Close()
		}
	}
	bob := env.joinMessaging("bob")
	alice := env.joinMessaging("alice")
	conv := alice.direct("bob")
	cid := newClientID()
	alice.send(proto.TypeChatSend, "s1", proto.ChatSendBody{ConversationID: conv.ID, ClientMsgID: cid, Text: "survives"})
	for m := range alice.in {
		if m.Type == proto.TypeChatAck {
			t.Fatalf("ack arrived despite the cut: %s", m.Data)
		}
	}
	// The connection is gone; the write was durable.
	pushed := bob.nextMessage()
	alice = env.joinMessaging("alice")
	ack := alice.sendText(conv.ID, cid, "survives")
	if !ack.Duplicate || ack.Seq != pushed.Seq || ack.ServerID != pushed.ServerID {
		t.Fatalf("retry ack %+v, stored %+v", ack, pushed)
	}
	got := env.storedEvents("alice", conv.ID)
	if len(got) != 1 || got[0].ClientMsgID != cid {
		t.Fatalf("stored %v", got)
	}
	bob.none(proto.TypeMessage, 100*time.Millisecond) // the retry is not pushed again
}

func TestPresence(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	alice.direct("bob")
	waitPresence := func(c *cc, who, status string) {
		t.Helper()
		c.waitFor(who+" "+status, func(m msg) bool {
			if m.Type != proto.TypePresence {
				return false
			}
			var p proto.PresenceBody
			m.decode(t, &p)
			return p.Identity == who && p.Status == status
		})
	}
	bob := env.joinMessaging("bob")
	waitPresence(alice, "bob", proto.PresenceOnline)
	waitPresence(bob, "alice", proto.PresenceOnline) // snapshot for the new session
	call := env.joinCC("bob", "standup", allGrants)
	waitPresence(alice, "bob", proto.PresenceInCall)
	call.close()
	waitPresence(alice, "bob", proto.PresenceOnline)
	bob.close()
	waitPresence(alice, "bob", proto.PresenceOffline)
	// Strangers are not told.
	env.joinMessaging("carol")
	alice.noneFn("carol's presence", func(m msg) bool {
		return m.Type == proto.TypePresence && strings.Contains(string(m.Data), `"carol"`)
	}, 100*time.Millisecond)
}

func TestAdminIssuesMessagingOnlyTokens(t *testing.T) {
	env := startChatServer(t, nil, nil)
	code, body := env.admin("POST", "/api/admin/tokens", `{"room":"","identity":"alice","grants":["chat"]}`)
	if code != 200 {
		t.Fatalf("status %d %s", code, body)
	}
	var tb proto.TokenBody
	if err := json.Unmarshal(body, &tb); err != nil {
		t.Fatal(err)
	}
	claims, err := env.keys.Verify(tb.Token)
	if err != nil || claims.Room != "" || !claims.Grants.Chat || claims.Identity != "alice" {
		t.Fatalf("claims %+v %v", claims, err)
	}
	c := env.dialCC()
	c.send("join", "j", proto.JoinBody{Token: tb.Token, Protocol: 1})
	if m := c.waitRe("j"); m.Type != "joined" {
		t.Fatalf("join answered %s %s", m.Type, m.Data)
	}
	if code, body := env.admin("POST", "/api/admin/tokens", `{"room":"","identity":"alice","grants":["publish"]}`); code != 400 {
		t.Fatalf("room-less token without chat: %d %s", code, body)
	}
}

// TestChatReact: a member's reaction is acked after the write and pushed
// to the other member as a react event; taking it back is an unreact;
// an emoji outside the set and a reaction to a non-message are refused.
func TestChatReact(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	bob := env.joinMessaging("bob")
	conv := alice.direct("bob")
	alice.sendText(conv.ID, newClientID(), "hello")
	if m := bob.nextMessage(); m.Seq != 1 {
		t.Fatalf("bob got %+v", m)
	}
	bob.send(proto.TypeChatReact, "r1", proto.ChatReactBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 1, Emoji: "🎉"})
	if m := bob.waitRe("r1"); m.Type != proto.TypeChatAck {
		t.Fatalf("react: %s %s", m.Type, m.Data)
	}
	if m := alice.nextMessage(); m.Kind != "react" || m.Text != "🎉" || m.TargetSeq != 1 || m.Sender.Identity != "bob" {
		t.Fatalf("alice got %+v, want bob's react", m)
	}
	bob.send(proto.TypeChatReact, "r2", proto.ChatReactBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 1, Emoji: "🎉", Remove: true})
	bob.waitRe("r2")
	if m := alice.nextMessage(); m.Kind != "unreact" || m.Seq != 3 {
		t.Fatalf("alice got %+v, want bob's unreact at seq 3", m)
	}
	bob.send(proto.TypeChatReact, "r3", proto.ChatReactBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 1, Emoji: "x"})
	bob.waitError(proto.CodeBadRequest)
	bob.send(proto.TypeChatReact, "r4", proto.ChatReactBody{ConversationID: conv.ID, ClientMsgID: newClientID(), TargetSeq: 2, Emoji: "👍"})
	bob.waitError(proto.CodeBadRequest)
}
