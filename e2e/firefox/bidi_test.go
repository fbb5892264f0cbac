package firefox

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
)

// fakeRemote is a WebDriver BiDi endpoint for client tests: each
// command goes to handle, which writes whatever frames it likes.
func fakeRemote(t *testing.T, handle func(ws *websocket.Conn, id int64, method string)) string {
	t.Helper()
	up := websocket.Upgrader{}
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		defer ws.Close()
		for {
			var cmd struct {
				ID     int64  `json:"id"`
				Method string `json:"method"`
			}
			if err := ws.ReadJSON(&cmd); err != nil {
				return
			}
			handle(ws, cmd.ID, cmd.Method)
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		handlers.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestBiDiMatchesResponsesAndEvents(t *testing.T) {
	var held []int64 // "slow" ids, answered after the next "fast" one
	url := fakeRemote(t, func(ws *websocket.Conn, id int64, method string) {
		switch method {
		case "slow":
			held = append(held, id)
		case "fast":
			_ = ws.WriteJSON(map[string]any{"type": "event", "method": "log.entryAdded", "params": map[string]any{"text": "hi"}})
			_ = ws.WriteJSON(map[string]any{"type": "success", "id": id, "result": map[string]any{"who": "fast"}})
			for _, h := range held {
				_ = ws.WriteJSON(map[string]any{"type": "success", "id": h, "result": map[string]any{"who": "slow"}})
			}
			held = nil
		case "bad":
			_ = ws.WriteJSON(map[string]any{"type": "error", "id": id, "error": "no such frame", "message": "gone"})
		}
	})
	events := make(chan Event, 4)
	c, err := DialBiDi(context.Background(), url, func(e Event) { events <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	slow := make(chan json.RawMessage, 1)
	go func() {
		r, err := c.Call(ctx, 5*time.Second, "slow", nil)
		if err != nil {
			t.Errorf("slow: %v", err)
		}
		slow <- r
	}()
	// Let "slow" reach the fake first so that its answer comes second.
	time.Sleep(100 * time.Millisecond)
	r, err := c.Call(ctx, 5*time.Second, "fast", nil)
	if err != nil || string(r) != `{"who":"fast"}` {
		t.Errorf("fast = %s, %v; want its own result", r, err)
	}
	if r := <-slow; string(r) != `{"who":"slow"}` {
		t.Errorf("slow = %s; want its own result", r)
	}
	select {
	case e := <-events:
		if e.Method != "log.entryAdded" || string(e.Params) != `{"text":"hi"}` {
			t.Errorf("event = %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Error("event not delivered")
	}

	_, err = c.Call(ctx, 5*time.Second, "bad", nil)
	var be *BiDiError
	if !errors.As(err, &be) || be.Code != "no such frame" || be.Method != "bad" {
		t.Errorf("error response = %v; want a BiDiError with code and method", err)
	}
}

func TestBiDiBoundsWaits(t *testing.T) {
	url := fakeRemote(t, func(ws *websocket.Conn, id int64, method string) {
		if method == "hangup" {
			_ = ws.Close()
		}
		// "ignored" gets no answer at all.
	})
	c, err := DialBiDi(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	start := time.Now()
	_, err = c.Call(context.Background(), 200*time.Millisecond, "ignored", nil)
	if err == nil || !strings.Contains(err.Error(), "no response") {
		t.Errorf("unanswered command: %v; want a timeout error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, time.Minute, "ignored", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v; want context.Canceled", err)
	}

	// A dropped connection fails the pending command and every later one.
	_, err = c.Call(context.Background(), 10*time.Second, "hangup", nil)
	if !errors.Is(err, ErrBiDiClosed) {
		t.Errorf("command on a dropped connection: %v; want ErrBiDiClosed", err)
	}
	if _, err := c.Call(context.Background(), 10*time.Second, "ignored", nil); !errors.Is(err, ErrBiDiClosed) {
		t.Errorf("command after the drop: %v; want ErrBiDiClosed", err)
	}
}
