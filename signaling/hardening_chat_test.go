package signaling

import (
	"testing"

	"github.com/parleyhq/parley/signaling/proto"
)

// A non-member learns nothing about a conversation it is not in: not
// whether it exists, not how long it is. Every request names either
// alice and bob's conversation (three messages long) or an id that
// exists nowhere, and carol must get the same answer for both
// (issue #17, finding 8).
func TestNonMemberGetsOneAnswerWhateverExists(t *testing.T) {
	env := startChatServer(t, nil, nil)
	alice := env.joinMessaging("alice")
	carol := env.joinMessaging("carol")
	conv := alice.direct("bob")
	for range 3 {
		alice.sendText(conv.ID, newClientID(), "private")
	}
	const nowhere = "0193aaaa-0000-7000-8000-000000000000"
	requests := []struct {
		typ  string
		body func(convID string) any
	}{
		{proto.TypeChatReceipt, func(id string) any { return proto.ChatReceiptBody{ConversationID: id, Read: 1000} }},
		{proto.TypeChatReceipt, func(id string) any { return proto.ChatReceiptBody{ConversationID: id, Delivered: 1} }},
		{proto.TypeChatSend, func(id string) any {
			return proto.ChatSendBody{ConversationID: id, ClientMsgID: newClientID(), Text: "hi"}
		}},
		{proto.TypeChatEdit, func(id string) any {
			return proto.ChatEditBody{ConversationID: id, ClientMsgID: newClientID(), TargetSeq: 1, Text: "x"}
		}},
		{proto.TypeChatDelete, func(id string) any {
			return proto.ChatDeleteBody{ConversationID: id, ClientMsgID: newClientID(), TargetSeq: 1}
		}},
		{proto.TypeChatHistory, func(id string) any { return proto.ChatHistoryBody{ConversationID: id} }},
		{proto.TypeChatRange, func(id string) any { return proto.ChatRangeBody{ConversationID: id} }},
		{proto.TypeCall, func(id string) any { return proto.CallBody{ConversationID: id} }},
	}
	for i, rq := range requests {
		answer := func(convID, re string) string {
			carol.send(rq.typ, re, rq.body(convID))
			m := carol.waitRe(re)
			if m.Type != proto.TypeError {
				t.Fatalf("%s by a non-member answered %s %s", rq.typ, m.Type, m.Data)
			}
			var eb proto.ErrorBody
			m.decode(t, &eb)
			if eb.Code != proto.CodeForbidden {
				t.Errorf("%s by a non-member: %s %q, want forbidden", rq.typ, eb.Code, eb.Message)
			}
			return eb.Code + ": " + eb.Message
		}
		real := answer(conv.ID, "real-"+rq.typ+string(rune('a'+i)))
		fake := answer(nowhere, "fake-"+rq.typ+string(rune('a'+i)))
		if real != fake {
			t.Errorf("%s: a non-member told apart an existing conversation (%q) from none (%q)", rq.typ, real, fake)
		}
	}
}
