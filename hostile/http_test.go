package hostile

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/testkit"
)

// servedDuring calls legitJoin (and extra, if not nil) rounds times while
// an attack runs, sampling memory each time; any failure fails the test.
func servedDuring(t *testing.T, p *testkit.Parley, m *memWatch, rounds int, extra func(context.Context) error) {
	t.Helper()
	for i := range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := legitJoin(ctx, p, fmt.Sprintf("legit-%d", i))
		if err == nil && extra != nil {
			err = extra(ctx)
		}
		cancel()
		m.sample()
		if err != nil {
			t.Fatalf("legitimate client not served during the attack (round %d): %v", i, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// holdTrickle sends head (request line and headers, a declared body of
// 4000 bytes) and then one body byte every 250 ms, until the server
// closes the connection or limit passes. It returns how long the
// connection stayed open.
func holdTrickle(ctx context.Context, src, addr, head string, limit time.Duration) (time.Duration, error) {
	c, err := dialFrom(ctx, src, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head+"Content-Length: 4000\r\n\r\n{"); err != nil {
		return 0, err
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, c) // until the server closes, or we do
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < limit {
		select {
		case <-closed:
			return time.Since(start), nil
		case <-tick.C:
			if _, err := c.Write([]byte(" ")); err != nil {
				<-closed
				return time.Since(start), nil
			}
		case <-ctx.Done():
			c.Close()
			<-closed
			return time.Since(start), ctx.Err()
		}
	}
	c.Close()
	<-closed
	return limit, nil
}

// Finding #17.2: 200 connections from one address trickling request
// bodies (WHIP with a bogus key, the admin API without credentials, the
// dev token endpoint, a GET with a body) are each cut at
// signaling.body_timeout, and a real user joins meanwhile.
func TestHTTPBodyTrickle(t *testing.T) {
	const bodyTimeout = 2 * time.Second
	p := start(t, map[string]any{"signaling": map[string]any{"body_timeout": bodyTimeout.String()}})
	m := watchMem(t, p)
	heads := []string{
		"POST /whip HTTP/1.1\r\nHost: " + p.Host + "\r\nAuthorization: Bearer sk_bogus\r\nContent-Type: application/sdp\r\n",
		"POST /api/admin/tokens HTTP/1.1\r\nHost: " + p.Host + "\r\nContent-Type: application/json\r\n",
		"POST /api/dev/token HTTP/1.1\r\nHost: " + p.Host + "\r\nOrigin: " + p.URL + "\r\nContent-Type: application/json\r\n",
		"GET /healthz HTTP/1.1\r\nHost: " + p.Host + "\r\n",
	}
	const n = 200
	const limit = 20 * time.Second // how long the attacker would hold each
	held := make([]time.Duration, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { held[i], errs[i] = holdTrickle(ctx, "127.0.0.2", p.Host, heads[i%len(heads)], limit) })
	}
	time.Sleep(500 * time.Millisecond)
	servedDuring(t, p, m, 3, nil)
	wg.Wait()
	worst, tooLong, example := time.Duration(0), 0, ""
	for i, d := range held {
		if errs[i] != nil {
			t.Fatalf("attack connection %d: %v", i, errs[i])
		}
		worst = max(worst, d)
		if d > bodyTimeout+5*time.Second {
			tooLong++
			example = fmt.Sprintf("%q held for %v", strings.SplitN(heads[i%len(heads)], "\r\n", 2)[0], d)
		}
	}
	if tooLong > 0 {
		t.Fatalf("%d of %d trickled bodies held their connection past body_timeout (%v), e.g. %s", tooLong, n, bodyTimeout, example)
	}
	t.Logf("%d trickling connections, each closed by the server within %v", n, worst)
	m.check(t)
}

// Already holds: slow headers are cut at the server's 10 s header
// timeout, and a real user joins meanwhile.
func TestHTTPHeaderSlowloris(t *testing.T) {
	p := start(t, nil)
	m := watchMem(t, p)
	const n = 200
	const limit = 25 * time.Second
	held := make([]time.Duration, n)
	ctx, cancel := context.WithTimeout(context.Background(), limit+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := dialFrom(ctx, "127.0.0.2", p.Host)
			if err != nil {
				held[i] = -1
				return
			}
			defer c.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				_, _ = io.Copy(io.Discard, c)
			}()
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+p.Host+"\r\n")
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for time.Since(start) < limit {
				select {
				case <-closed:
					held[i] = time.Since(start)
					return
				case <-tick.C:
					if _, err := fmt.Fprintf(c, "X-Slow-%d: 1\r\n", rand.IntN(1000)); err != nil {
						<-closed
						held[i] = time.Since(start)
						return
					}
				}
			}
			c.Close()
			<-closed
			held[i] = limit
		})
	}
	time.Sleep(500 * time.Millisecond)
	servedDuring(t, p, m, 3, nil)
	wg.Wait()
	for i, d := range held {
		if d < 0 {
			t.Fatalf("attack connection %d could not connect", i)
		}
		if d > 16*time.Second {
			t.Fatalf("slow headers held connection %d for %v; the header timeout is 10 s", i, d)
		}
	}
	m.check(t)
}

// wsDialFrom opens a WebSocket to p from the loopback address src.
func wsDialFrom(ctx context.Context, p *testkit.Parley, src string, h http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialFrom(ctx, src, addr)
		},
	}
	if h == nil {
		h = http.Header{}
	}
	if h.Get("Origin") == "" {
		h.Set("Origin", p.URL)
	}
	return d.DialContext(ctx, "ws://"+p.Host+"/ws", h)
}

// Finding #17.6: one address opening 600 WebSockets that never join
// (each claiming another client in X-Forwarded-For, which an untrusted
// peer cannot do) gets signaling.max_unjoined_per_address (64) of them;
// the rest are refused with 429, other addresses are unaffected, and a
// real user joins meanwhile.
func TestWebSocketUnjoinedFlood(t *testing.T) {
	p := start(t, nil)
	m := watchMem(t, p)
	const n = 600
	var accepted, refused429 atomic.Int64
	var other atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conns sync.Map // held open until the test ends
	defer conns.Range(func(k, _ any) bool { _ = k.(*websocket.Conn).Close(); return true })
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h := http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i%250+1)}}
			ws, resp, err := wsDialFrom(ctx, p, "127.0.0.2", h)
			switch {
			case err == nil:
				accepted.Add(1)
				conns.Store(ws, true)
			case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
				var eb struct{ Code string }
				_ = json.NewDecoder(resp.Body).Decode(&eb)
				if eb.Code == "too_many_connections" {
					refused429.Add(1)
				}
			default:
				other.Store(fmt.Sprintf("socket %d: %v", i, err))
			}
		})
		if i == n/2 {
			servedDuring(t, p, m, 1, func(ctx context.Context) error {
				ws, _, err := wsDialFrom(ctx, p, "127.0.0.3", nil)
				if err != nil {
					return fmt.Errorf("another address could not open a WebSocket: %w", err)
				}
				return ws.Close()
			})
		}
	}
	wg.Wait()
	if o := other.Load(); o != nil {
		t.Fatalf("unexpected failure: %v", o)
	}
	t.Logf("%d sockets from one address: %d accepted, %d refused with 429", n, accepted.Load(), refused429.Load())
	if accepted.Load() > 64 || accepted.Load()+refused429.Load() != n {
		t.Fatalf("%d unjoined sockets accepted from one address (cap 64), %d refused with too_many_connections", accepted.Load(), refused429.Load())
	}
	servedDuring(t, p, m, 2, nil)
	m.check(t)
}

// forgedTokens are join tokens the server must refuse: a wrong signing
// key, alg none, an edited payload, an expired token signed with the
// real key, and garbage.
func forgedTokens(t *testing.T, p *testkit.Parley) []string {
	t.Helper()
	genuine, err := guestToken(p, "forged")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(genuine, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	resign := func(method jwt.SigningMethod, key any, edit func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range parsed.Claims.(jwt.MapClaims) {
			c[k] = v
		}
		if edit != nil {
			edit(c)
		}
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = parsed.Header["kid"]
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	parts := strings.Split(genuine, ".")
	edited, _ := json.Marshal(map[string]any{"sub": "admin", "room": "forged", "exp": time.Now().Add(time.Hour).Unix(),
		"grants": map[string]bool{"publish": true, "subscribe": true, "admin": true}})
	return []string{
		resign(jwt.SigningMethodHS256, []byte("not-the-server-secret-not-the-server-secret"), nil),
		resign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil),
		parts[0] + "." + base64.RawURLEncoding.EncodeToString(edited) + "." + parts[2],
		resign(jwt.SigningMethodHS256, []byte(testkit.ParleyAPISecret), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"not.a.jwt",
	}
}

// joinReply sends a join with token and returns the reply's type and
// error code, skipping pings.
func joinReply(ws *websocket.Conn, token string) (typ, code string, err error) {
	join := map[string]any{"type": "join", "id": "1", "data": map[string]any{"token": token, "protocol": 1}}
	if err := ws.WriteJSON(join); err != nil {
		return "", "", err
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 20 {
		var msg struct {
			Type string
			Data struct{ Code string }
		}
		if err := ws.ReadJSON(&msg); err != nil {
			return "", "", err
		}
		if msg.Type != "ping" {
			return msg.Type, msg.Data.Code, nil
		}
	}
	return "", "", errors.New("no reply among 20 messages")
}

// closedByServer reads until the server closes the socket (within 5 s).
func closedByServer(ws *websocket.Conn) bool {
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 100 {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
	return false
}

// Already holds: 300 joins with forged or expired tokens are each
// refused (error unauthorized) and their sockets closed by the server,
// while a real user joins.
func TestWebSocketForgedTokenFlood(t *testing.T) {
	p := start(t, nil)
	forged := forgedTokens(t, p)
	m := watchMem(t, p)
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var failures sync.Map
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws, _, err := wsDialFrom(ctx, p, "127.0.0.2", nil)
			if err != nil {
				failures.Store(i, fmt.Sprintf("dial: %v", err))
				return
			}
			defer ws.Close()
			typ, code, err := joinReply(ws, forged[i%len(forged)])
			if err != nil || typ != "error" || code != "unauthorized" {
				failures.Store(i, fmt.Sprintf("forged token %d: reply %q %q, %v; want error unauthorized", i%len(forged), typ, code, err))
				return
			}
			if !closedByServer(ws) {
				failures.Store(i, "socket still open 5 s after an unauthorized join")
			}
		})
		if i%100 == 50 {
			servedDuring(t, p, m, 1, nil)
		}
	}
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("attack %v: %v", k, v)
		return true
	})
	m.check(t)
}

// Already holds: sockets sending junk as fast as they can (malformed
// JSON, binary frames, frames over max_message_bytes), before and after
// joining, are closed by the server (rate-limit violations, 1009, or a
// full send queue), while a real user joins.
func TestWebSocketJunkFrameFlood(t *testing.T) {
	p := start(t, nil)
	var tokens []string
	for i := range 8 { // the dev token endpoint's burst is 50 per server
		tok, err := guestToken(p, fmt.Sprintf("junk-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	m := watchMem(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	junk := [][]byte{[]byte("{bad"), []byte(`{"type":"nope"}`), []byte("[]"), []byte(`{"type":"join","data":7}`)}
	big := []byte(`"` + strings.Repeat("x", 70000) + `"`)
	const attackers = 24
	var failures sync.Map
	var wg sync.WaitGroup
	for i := range attackers {
		wg.Go(func() {
			ws, _, err := wsDialFrom(ctx, p, "127.0.0.2", nil)
			if err != nil {
				failures.Store(i, fmt.Sprintf("dial: %v", err))
				return
			}
			defer ws.Close()
			if i < len(tokens) {
				if typ, _, err := joinReply(ws, tokens[i]); err != nil || typ != "joined" {
					failures.Store(i, fmt.Sprintf("join: %q %v", typ, err))
					return
				}
			}
			// Read (and drop) what the server says, so its replies do not
			// decide the outcome by filling our socket buffer.
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
			_ = ws.SetWriteDeadline(time.Now().Add(20 * time.Second))
		send:
			for j := range 3000 {
				var err error
				switch {
				case i%3 == 2 && j == 250:
					err = ws.WriteMessage(websocket.TextMessage, big)
				case j%7 == 0:
					err = ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, byte(j)})
				default:
					err = ws.WriteMessage(websocket.TextMessage, junk[j%len(junk)])
				}
				if err != nil {
					break send
				}
				select {
				case <-closed:
					break send
				default:
				}
			}
			select {
			case <-closed:
			case <-time.After(15 * time.Second):
				failures.Store(i, "server kept a junk-sending socket open for 15 s")
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	servedDuring(t, p, m, 3, nil)
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("attacker %v: %v", k, v)
		return true
	})
	m.check(t)
}

// adminPost sends a POST to the admin API with the operator's API key,
// as a browser with cached Basic credentials would.
func adminPost(p *testkit.Parley, path, ctype, origin, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, p.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(testkit.ParleyAPIKey, testkit.ParleyAPISecret)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), nil
}

// Finding #17.7: 300 cross-site "simple" POSTs to the admin API carrying
// the operator's credentials (text/plain and form bodies, a foreign
// Origin, trailing data) mint no token and no stream key, while the
// same request as JSON from a tool works and a real user joins.
func TestAdminCrossSitePostFlood(t *testing.T) {
	p := start(t, nil)
	m := watchMem(t, p)
	tokenBody := `{"room":"r","identity":"mallory","grants":["admin"],"ttl":"1h"}`
	attacks := []struct{ path, ctype, origin, body string }{
		{"/api/admin/tokens", "text/plain", "https://evil.example", tokenBody},
		{"/api/admin/tokens", "text/plain", "", tokenBody},
		{"/api/admin/tokens", "application/x-www-form-urlencoded", "null", tokenBody},
		{"/api/admin/tokens", "application/json", "https://evil.example", tokenBody},
		{"/api/admin/tokens", "application/json", "", tokenBody + `{"x":1}`},
		{"/api/admin/ingress", "text/plain", "", `{"room":"r","name":"evil"}`},
		{"/api/admin/ingress", "application/json", "https://evil.example", `{"room":"r","name":"evil"}`},
	}
	for i := range 300 {
		a := attacks[i%len(attacks)]
		code, body, err := adminPost(p, a.path, a.ctype, a.origin, a.body)
		if err != nil {
			t.Fatal(err)
		}
		if code < 400 || strings.Contains(body, `"token"`) || strings.Contains(body, `"key"`) {
			t.Fatalf("%s as %s from %q: %d %s, want a refusal", a.path, a.ctype, a.origin, code, body)
		}
		if i%100 == 0 {
			servedDuring(t, p, m, 1, nil)
		}
	}
	code, body, err := adminPost(p, "/api/admin/tokens", "application/json", "", tokenBody)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"token"`) {
		t.Fatalf("the same request as JSON from a tool: %d %s %v", code, body, err)
	}
	m.check(t)
}

// Finding #17.10: a DNS-rebinding page (Host and Origin evil.example,
// the server in dev mode) gets no guest token and no WebSocket, over
// 200 tries, while the page on 127.0.0.1 gets both.
func TestDevModeRebindingRefused(t *testing.T) {
	p := start(t, nil)
	m := watchMem(t, p)
	_, port, _ := net.SplitHostPort(p.Host)
	evil := "evil.example:" + port
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 200 {
		if i%2 == 0 {
			req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/dev/token", strings.NewReader(`{"room":"r"}`))
			req.Host = evil
			req.Header.Set("Origin", "http://"+evil)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), `"token"`) {
				t.Fatalf("guest token for a rebound Host: %d %s", resp.StatusCode, b)
			}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ws, resp, err := wsDialFrom(ctx, p, "127.0.0.2", http.Header{"Host": {evil}, "Origin": {"http://" + evil}})
			cancel()
			if err == nil {
				ws.Close()
				t.Fatal("WebSocket accepted for a rebound Host")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("WebSocket for a rebound Host: %v (response %v)", err, resp)
			}
		}
		if i%50 == 0 {
			servedDuring(t, p, m, 1, nil)
		}
	}
	m.check(t)
}
