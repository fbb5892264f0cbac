package proto

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parleyhq/parley/chat"
)

const testUUID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

func TestDecodeChatRequests(t *testing.T) {
	upper := strings.ToUpper(testUUID)
	longID := strings.Repeat("c", 129)
	manySeqs := map[string]int64{}
	for i := range maxSyncConversations + 1 {
		manySeqs[fmt.Sprintf("c%d", i)] = 1
	}
	manyJSON, _ := json.Marshal(map[string]any{"type": "chat_sync", "data": map[string]any{"lastSeqs": manySeqs}})
	tests := []struct {
		name     string
		in       string
		wantCode string // "" means valid
		check    func(t *testing.T, body any)
	}{
		{name: "send", in: `{"type":"chat_send","id":"1","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","text":"hi"}}`,
			check: func(t *testing.T, body any) {
				b := body.(*ChatSendBody)
				if b.ConversationID != "c1" || b.ClientMsgID != testUUID || b.Text != "hi" {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "send upper-case id is normalised", in: `{"type":"chat_send","data":{"conversationId":"c1","clientMsgId":"` + upper + `","text":"hi"}}`,
			check: func(t *testing.T, body any) {
				if b := body.(*ChatSendBody); b.ClientMsgID != testUUID {
					t.Fatalf("client id %q not normalised", b.ClientMsgID)
				}
			}},
		{name: "send without conversation", in: `{"type":"chat_send","data":{"clientMsgId":"` + testUUID + `","text":"hi"}}`, wantCode: CodeBadRequest},
		{name: "send conversation too long", in: `{"type":"chat_send","data":{"conversationId":"` + longID + `","clientMsgId":"` + testUUID + `","text":"hi"}}`, wantCode: CodeBadRequest},
		{name: "send bad client id", in: `{"type":"chat_send","data":{"conversationId":"c1","clientMsgId":"42","text":"hi"}}`, wantCode: CodeBadRequest},
		{name: "send braced client id", in: `{"type":"chat_send","data":{"conversationId":"c1","clientMsgId":"{` + testUUID + `}","text":"hi"}}`, wantCode: CodeBadRequest},
		{name: "send empty text", in: `{"type":"chat_send","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","text":""}}`, wantCode: CodeBadRequest},
		{name: "send text as number", in: `{"type":"chat_send","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","text":5}}`, wantCode: CodeBadRequest},
		{name: "send no data", in: `{"type":"chat_send"}`, wantCode: CodeBadRequest},
		{name: "edit", in: `{"type":"chat_edit","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","targetSeq":3,"text":"fixed"}}`,
			check: func(t *testing.T, body any) {
				if b := body.(*ChatEditBody); b.TargetSeq != 3 || b.Text != "fixed" {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "edit without target", in: `{"type":"chat_edit","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","text":"x"}}`, wantCode: CodeBadRequest},
		{name: "delete", in: `{"type":"chat_delete","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","targetSeq":1}}`},
		{name: "delete negative target", in: `{"type":"chat_delete","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","targetSeq":-1}}`, wantCode: CodeBadRequest},
		{name: "sync", in: `{"type":"chat_sync","data":{"lastSeqs":{"c1":4,"c2":0},"limit":50}}`,
			check: func(t *testing.T, body any) {
				if b := body.(*ChatSyncBody); b.LastSeqs["c1"] != 4 || len(b.LastSeqs) != 2 || b.Limit != 50 {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "sync empty", in: `{"type":"chat_sync","data":{}}`},
		{name: "sync negative seq", in: `{"type":"chat_sync","data":{"lastSeqs":{"c1":-1}}}`, wantCode: CodeBadRequest},
		{name: "sync negative limit", in: `{"type":"chat_sync","data":{"limit":-1}}`, wantCode: CodeBadRequest},
		{name: "sync too many conversations", in: string(manyJSON), wantCode: CodeBadRequest},
		{name: "history", in: `{"type":"chat_history","data":{"conversationId":"c1","beforeSeq":10,"limit":20}}`},
		{name: "history negative before", in: `{"type":"chat_history","data":{"conversationId":"c1","beforeSeq":-2}}`, wantCode: CodeBadRequest},
		{name: "range", in: `{"type":"chat_range","data":{"conversationId":"c1","afterSeq":7}}`,
			check: func(t *testing.T, body any) {
				if b := body.(*ChatRangeBody); b.AfterSeq != 7 {
					t.Fatalf("body %+v", b)
				}
			}},
		{name: "range seq as string", in: `{"type":"chat_range","data":{"conversationId":"c1","afterSeq":"7"}}`, wantCode: CodeBadRequest},
		{name: "receipt", in: `{"type":"chat_receipt","data":{"conversationId":"c1","delivered":5,"read":3}}`},
		{name: "receipt empty", in: `{"type":"chat_receipt","data":{"conversationId":"c1"}}`, wantCode: CodeBadRequest},
		{name: "receipt negative", in: `{"type":"chat_receipt","data":{"conversationId":"c1","read":-1}}`, wantCode: CodeBadRequest},
		{name: "direct", in: `{"type":"chat_direct","data":{"identity":"bob"}}`},
		{name: "direct empty", in: `{"type":"chat_direct","data":{"identity":""}}`, wantCode: CodeBadRequest},
		{name: "direct control char", in: `{"type":"chat_direct","data":{"identity":"bo\u0007b"}}`, wantCode: CodeBadRequest},
		{name: "group", in: `{"type":"chat_group","data":{"title":"Team","members":["bob","carol"]}}`},
		{name: "group no members", in: `{"type":"chat_group","data":{"title":"Team","members":[]}}`, wantCode: CodeBadRequest},
		{name: "group blank member", in: `{"type":"chat_group","data":{"members":[" bob"]}}`, wantCode: CodeBadRequest},
		{name: "typing", in: `{"type":"typing","data":{"conversationId":"c1"}}`},
		{name: "typing without conversation", in: `{"type":"typing","data":{}}`, wantCode: CodeBadRequest},
		{name: "call identity", in: `{"type":"call","data":{"to":"bob"}}`},
		{name: "call conversation", in: `{"type":"call","data":{"conversationId":"c1"}}`},
		{name: "call both", in: `{"type":"call","data":{"to":"bob","conversationId":"c1"}}`, wantCode: CodeBadRequest},
		{name: "call neither", in: `{"type":"call","data":{}}`, wantCode: CodeBadRequest},
		{name: "accept", in: `{"type":"call_accept","data":{"callId":"` + upper + `"}}`,
			check: func(t *testing.T, body any) {
				if b := body.(*CallRefBody); b.CallID != testUUID {
					t.Fatalf("call id %q not normalised", b.CallID)
				}
			}},
		{name: "decline bad id", in: `{"type":"call_decline","data":{"callId":"x"}}`, wantCode: CodeBadRequest},
		{name: "cancel", in: `{"type":"call_cancel","data":{"callId":"` + testUUID + `"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, perr := DecodeRequest([]byte(tc.in))
			if tc.wantCode != "" {
				if perr == nil || perr.Code != tc.wantCode {
					t.Fatalf("got %v, want code %s", perr, tc.wantCode)
				}
				if req.Body != nil {
					t.Fatal("body returned with an error")
				}
				return
			}
			if perr != nil {
				t.Fatalf("unexpected error %v", perr)
			}
			if req.Body == nil {
				t.Fatal("no body")
			}
			if tc.check != nil {
				tc.check(t, req.Body)
			}
		})
	}
}

// FuzzDecodeChatRequest feeds arbitrary input to the decoder, seeded with
// every chat, presence and call message, and checks what any accepted
// body guarantees to the handlers.
func FuzzDecodeChatRequest(f *testing.F) {
	seeds := []string{
		`{"type":"chat_send","id":"1","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","text":"hi"}}`,
		`{"type":"chat_edit","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","targetSeq":3,"text":"x"}}`,
		`{"type":"chat_delete","data":{"conversationId":"c1","clientMsgId":"` + testUUID + `","targetSeq":1}}`,
		`{"type":"chat_sync","data":{"lastSeqs":{"c1":4},"limit":5}}`,
		`{"type":"chat_history","data":{"conversationId":"c1","beforeSeq":10,"limit":20}}`,
		`{"type":"chat_range","data":{"conversationId":"c1","afterSeq":7}}`,
		`{"type":"chat_receipt","data":{"conversationId":"c1","delivered":5,"read":3}}`,
		`{"type":"chat_direct","data":{"identity":"bob"}}`,
		`{"type":"chat_group","data":{"title":"T","members":["bob"]}}`,
		`{"type":"typing","data":{"conversationId":"c1"}}`,
		`{"type":"call","data":{"to":"bob"}}`,
		`{"type":"call_accept","data":{"callId":"` + testUUID + `"}}`,
		`{"type":"call_decline","data":{"callId":"` + testUUID + `"}}`,
		`{"type":"call_cancel","data":{"callId":"` + testUUID + `"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, perr := DecodeRequest(in)
		if perr != nil {
			if perr.Code == "" || perr.Message == "" || req.Body != nil {
				t.Fatalf("bad error result: %+v body %v", perr, req.Body)
			}
			return
		}
		canonical := func(id string) {
			if n, err := chat.ParseClientMsgID(id); err != nil || n != id {
				t.Fatalf("accepted non-canonical UUID %q", id)
			}
		}
		conv := func(id string) {
			if id == "" || len(id) > chat.MaxIDBytes {
				t.Fatalf("accepted conversation id %q", id)
			}
		}
		switch b := req.Body.(type) {
		case *ChatSendBody:
			canonical(b.ClientMsgID)
			conv(b.ConversationID)
			if b.Text == "" {
				t.Fatal("accepted empty text")
			}
		case *ChatEditBody:
			canonical(b.ClientMsgID)
			conv(b.ConversationID)
			if b.TargetSeq <= 0 {
				t.Fatal("accepted non-positive target")
			}
		case *ChatDeleteBody:
			canonical(b.ClientMsgID)
			if b.TargetSeq <= 0 {
				t.Fatal("accepted non-positive target")
			}
		case *ChatSyncBody:
			if len(b.LastSeqs) > maxSyncConversations || b.Limit < 0 {
				t.Fatalf("accepted sync %+v", b)
			}
			for id, seq := range b.LastSeqs {
				conv(id)
				if seq < 0 {
					t.Fatal("accepted negative seq")
				}
			}
		case *ChatHistoryBody:
			conv(b.ConversationID)
			if b.BeforeSeq < 0 || b.Limit < 0 {
				t.Fatalf("accepted history %+v", b)
			}
		case *ChatRangeBody:
			conv(b.ConversationID)
			if b.AfterSeq < 0 || b.Limit < 0 {
				t.Fatalf("accepted range %+v", b)
			}
		case *ChatReceiptBody:
			conv(b.ConversationID)
			if b.Delivered < 0 || b.Read < 0 || b.Delivered+b.Read == 0 {
				t.Fatalf("accepted receipt %+v", b)
			}
		case *ChatDirectBody:
			if chat.ValidateIdentity(chat.Identity{ID: b.Identity}) != nil {
				t.Fatalf("accepted identity %q", b.Identity)
			}
		case *ChatGroupBody:
			if len(b.Members) == 0 || len(b.Members) > maxGroupMemberList {
				t.Fatalf("accepted %d members", len(b.Members))
			}
		case *TypingBody:
			conv(b.ConversationID)
		case *CallBody:
			if (b.To == "") == (b.ConversationID == "") {
				t.Fatalf("accepted call %+v", b)
			}
		case *CallRefBody:
			canonical(b.CallID)
		}
	})
}
