package wire

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/signaling/proto"
)

// scriptedServer answers join, pings the client, checks the pong, pushes
// a message, and answers each "chat_send" with an error and each
// "chat_sync" with a page: what Conn must route.
func scriptedServer(t *testing.T, pong chan<- proto.PingBody) *httptest.Server {
	up := websocket.Upgrader{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer ws.Close()
		for {
			_, raw, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var env proto.Envelope
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Errorf("client sent %q", raw)
				return
			}
			var reply []byte
			switch env.Type {
			case proto.TypeJoin:
				var jb proto.JoinBody
				_ = json.Unmarshal(env.Data, &jb)
				if jb.Token != "tok" || jb.Protocol != proto.ProtocolVersion {
					reply = proto.Encode(proto.TypeError, env.ID, proto.ErrorBody{Code: proto.CodeUnauthorized, Message: "bad token"})
					break
				}
				_ = ws.WriteMessage(websocket.TextMessage, proto.Encode(proto.TypeJoined, env.ID, proto.JoinedBody{Room: "r", Participant: proto.ParticipantView{Identity: "ada"}}))
				reply = proto.Encode(proto.TypePing, "", proto.PingBody{TS: 42})
			case proto.TypePong:
				var p proto.PingBody
				_ = json.Unmarshal(env.Data, &p)
				pong <- p
				reply = proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: "bob", Status: proto.PresenceOnline})
			case proto.TypeChatSend:
				reply = proto.Encode(proto.TypeError, env.ID, proto.ErrorBody{Code: proto.CodeForbidden, Message: "no"})
			case proto.TypeChatSync:
				reply = proto.Encode(proto.TypeChatSynced, env.ID, proto.ChatSyncedBody{Gone: []string{"x"}})
			}
			if reply != nil {
				_ = ws.WriteMessage(websocket.TextMessage, reply)
			}
		}
	}))
}

func TestConnRoutesRepliesPingsAndPushes(t *testing.T) {
	pong := make(chan proto.PingBody, 1)
	hs := scriptedServer(t, pong)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := Dial(ctx, Options{URL: url, Token: "forged"}); err == nil {
		t.Fatal("join with a bad token succeeded")
	} else if se := (*ServerError)(nil); !errors.As(err, &se) || se.Code != proto.CodeUnauthorized {
		t.Fatalf("join refusal: %v, want a ServerError unauthorized", err)
	}

	var mu sync.Mutex
	var pushes []string
	pushed := make(chan struct{}, 1)
	c, err := Dial(ctx, Options{URL: url, Token: "tok", OnPush: func(_ *Conn, typ string, data json.RawMessage) {
		mu.Lock()
		pushes = append(pushes, typ+" "+string(data))
		mu.Unlock()
		pushed <- struct{}{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Joined.Room != "r" || c.Joined.Participant.Identity != "ada" {
		t.Fatalf("joined %+v", c.Joined)
	}
	select {
	case p := <-pong:
		if p.TS != 42 {
			t.Fatalf("pong ts %d, want the ping's 42", p.TS)
		}
	case <-ctx.Done():
		t.Fatal("no pong")
	}
	select {
	case <-pushed:
	case <-ctx.Done():
		t.Fatal("no push")
	}
	mu.Lock()
	if len(pushes) != 1 || !strings.HasPrefix(pushes[0], "presence ") {
		t.Fatalf("pushes %q: want the presence only (not the ping, not replies)", pushes)
	}
	mu.Unlock()

	err = c.Request(ctx, proto.TypeChatSend, proto.ChatSendBody{ConversationID: "c"}, nil)
	if se := (*ServerError)(nil); !errors.As(err, &se) || se.Code != proto.CodeForbidden {
		t.Fatalf("error reply: %v", err)
	}
	var synced proto.ChatSyncedBody
	if err := c.Request(ctx, proto.TypeChatSync, proto.ChatSyncBody{}, &synced); err != nil || len(synced.Gone) != 1 {
		t.Fatalf("reply %+v, %v", synced, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Request(ctx, proto.TypeChatSync, proto.ChatSyncBody{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("request after close: %v, want ErrClosed", err)
	}
}
