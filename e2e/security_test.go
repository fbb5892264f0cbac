package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// devToken gets a guest token the way the web client does.
func devToken(t *testing.T, srv *server, room, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"room": room, "name": name})
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/dev/token", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", srv.URL)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST /api/dev/token: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.Token == "" {
		t.Fatalf("POST /api/dev/token: status %d body %q", resp.StatusCode, raw)
	}
	return out.Token
}

func dialWS(srv *server, origin string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return d.Dial("ws://"+srv.Host+"/ws", h)
}

type envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Re   string          `json:"re,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// joinReply sends a join with token and returns the first reply that is
// not a ping (pings may arrive any time).
func joinReply(t *testing.T, c *websocket.Conn, token string) envelope {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"token": token, "protocol": 1, "name": "Mallory"})
	if err := c.WriteJSON(envelope{Type: "join", ID: "j1", Data: data}); err != nil {
		t.Fatalf("send join: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 50; i++ {
		_ = c.SetReadDeadline(deadline)
		var m envelope
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for the join reply: %v", err)
		}
		if m.Type != "ping" {
			return m
		}
	}
	t.Fatal("no join reply among 50 messages")
	return envelope{}
}

func TestCrossSiteWebSocketRefused(t *testing.T) {
	srv := startServer(t)
	for _, origin := range []string{"https://evil.example", "http://127.0.0.1.evil.example", "null"} {
		c, resp, err := dialWS(srv, origin)
		if err == nil {
			c.Close()
			t.Errorf("Origin %s: WebSocket upgrade accepted, want 403", origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("Origin %s: status %d (err %v), want 403", origin, status, err)
		}
	}
	// The same request from the server's own origin works, so the refusal
	// above is about the origin and not a broken endpoint.
	c, _, err := dialWS(srv, srv.URL)
	if err != nil {
		t.Fatalf("same-origin WebSocket refused: %v", err)
	}
	c.Close()
}

func TestForgedTokensRefused(t *testing.T) {
	srv := startServer(t)
	genuine := devToken(t, srv, "e2e-auth", "Mallory")

	parsed, _, err := jwt.NewParser().ParseUnverified(genuine, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("dev token is not a JWT: %v", err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	resign := func(method jwt.SigningMethod, key any, edit func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		if edit != nil {
			edit(c)
		}
		tok := jwt.NewWithClaims(method, c)
		for k, v := range parsed.Header {
			if k != "alg" && k != "typ" {
				tok.Header[k] = v
			}
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	parts := strings.Split(genuine, ".")
	tampered := func() string {
		// Same signature, different claims: an edited payload.
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		c["exp"] = time.Now().Add(24 * time.Hour).Unix()
		raw, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	}

	cases := map[string]string{
		"wrong key":      resign(jwt.SigningMethodHS256, []byte("not-the-server-secret-not-the-server-secret"), nil),
		"alg none":       resign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil),
		"edited payload": tampered(),
		"garbage":        "not.a.jwt",
		"empty":          "",
		"expired (own key)": resign(jwt.SigningMethodHS256, []byte(testAPISecret), func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}),
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			c, _, err := dialWS(srv, srv.URL)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			m := joinReply(t, c, token)
			var e struct {
				Code string `json:"code"`
			}
			_ = json.Unmarshal(m.Data, &e)
			if m.Type != "error" || e.Code != "unauthorized" {
				t.Fatalf("join with %s token: got %s %s, want error unauthorized", name, m.Type, m.Data)
			}
			// The server must close the connection after refusing.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := 0; i < 20; i++ {
				if _, _, err = c.ReadMessage(); err != nil {
					break
				}
			}
			var ce *websocket.CloseError
			if err == nil || (!errors.As(err, &ce) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset")) {
				t.Fatalf("connection still open after unauthorized join (last read err %v)", err)
			}
		})
	}

	// Control: the genuine token joins, so the refusals are about the
	// forgery and not about the join itself.
	c, _, err := dialWS(srv, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := joinReply(t, c, genuine); m.Type != "joined" || m.Re != "j1" {
		t.Fatalf("join with the genuine token: got %s re=%q %s", m.Type, m.Re, m.Data)
	}
}
