package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/testkit"
)

// guestToken asks the dev-mode endpoint for a guest token to room, as the
// web client does.
func guestToken(p *testkit.Parley, room string) (string, error) {
	body, _ := json.Marshal(map[string]string{"room": room, "name": "Legit"})
	req, err := http.NewRequest(http.MethodPost, p.URL+"/api/dev/token", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.URL)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("guest token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("guest token: status %d", resp.StatusCode)
	}
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("guest token: %w", err)
	}
	return out.Token, nil
}

// legitJoin is what a real user does first: fetch a token, open the
// WebSocket from the page's origin and join a room. It returns nil once
// the server answered `joined`.
func legitJoin(ctx context.Context, p *testkit.Parley, room string) error {
	token, err := guestToken(p, room)
	if err != nil {
		return err
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	h := http.Header{"Origin": {p.URL}}
	ws, _, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(p.URL, "http")+"/ws", h)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	join := map[string]any{"type": "join", "id": "1", "data": map[string]any{"token": token, "protocol": 1, "name": "Legit"}}
	if err := ws.WriteJSON(join); err != nil {
		return fmt.Errorf("send join: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 20 {
		var msg struct{ Type string }
		if err := ws.ReadJSON(&msg); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		switch msg.Type {
		case "joined":
			return nil
		case "error":
			return fmt.Errorf("join refused")
		}
	}
	return fmt.Errorf("no joined among the first 20 messages")
}

// TestLegitJoinBaseline checks the helper itself against a quiet server,
// so a failure under attack means the attack, not the helper.
func TestLegitJoinBaseline(t *testing.T) {
	p := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := legitJoin(ctx, p, "baseline"); err != nil {
		t.Fatalf("a legitimate join on a quiet server: %v", err)
	}
	rss, err := p.RSS()
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Fatalf("RSS %d bytes: not a real reading", rss)
	}
	t.Logf("quiet server RSS %.1f MiB", float64(rss)/(1<<20))
}
