package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// Tests of the HTTP edge (issue #17 findings 2, 6, 7 and 10): limits
// that hold before any route's handler or authentication runs.

// bodyReader is a route like WHIP: it checks a credential only after it
// has read the whole body, so a trickled body holds it.
type bodyReader struct{}

func (b bodyReader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = fmt.Fprintf(w, "read %d bytes", len(body))
}

// bigBodyReader declares a body limit above the default, as WHIP does
// for its SDP offers.
type bigBodyReader struct{ bodyReader }

func (bigBodyReader) MaxBodyBytes() int64 { return 64 << 10 }

// startEdgeServer is startServer with extra routes, as cmd mounts WHIP
// and the stream-key admin API.
func startEdgeServer(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	media := newFakeMedia()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv, err := New(cfg, Deps{Media: media, Keys: keys, Registry: reg, Gatherer: reg,
		Routes:      map[string]http.Handler{"/reader": bodyReader{}, "/big": bigBodyReader{}},
		AdminRoutes: map[string]http.Handler{"/api/admin/ingress": ok},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := testkit.RunInBackground(t, "Run", srv.Run)
	wctx, wcancel := context.WithTimeout(context.Background(), waitLimit)
	defer wcancel()
	if srv.WaitAddr(wctx) == nil {
		t.Fatal("server did not start listening")
	}
	return &testEnv{t: t, srv: srv, media: media, keys: keys, reg: reg, base: "http://" + srv.Addr().String(), stop: stop}
}

// trickle sends request headers declaring a 1000-byte body, then one
// byte every 50 ms for at most limit, and returns how long the server
// kept the connection open (limit if it never closed it).
func trickle(t *testing.T, addr, head string, limit time.Duration) time.Duration {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head+"Content-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, c) // returns once the server closes (or the test does)
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < limit {
		select {
		case d := <-closed:
			return d
		case <-tick.C:
			if _, err := c.Write([]byte(" ")); err != nil {
				return time.Since(start)
			}
		}
	}
	_ = c.Close()
	<-closed
	return limit
}

// Finding 2: a trickled body must not hold a connection for longer than
// signaling.body_timeout, on any route: before a handler runs (unread
// bodies are drained before a response), in a handler that reads the
// body before its auth, on an admin route without credentials.
func TestBodyTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	env := startEdgeServer(t, func(c *Config) { c.BodyTimeout = timeout })
	addr := strings.TrimPrefix(env.base, "http://")
	for _, head := range []string{
		"POST /reader HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nAuthorization: Bearer bogus\r\n",
		"POST /api/admin/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
		"POST /api/admin/ingress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\n",
		"POST /nothing/here HTTP/1.1\r\nHost: x\r\n",
	} {
		name, _, _ := strings.Cut(head, "\r\n")
		t.Run(name, func(t *testing.T) {
			held := trickle(t, addr, head, 4*time.Second)
			if held > timeout+1500*time.Millisecond {
				t.Fatalf("a trickled body held the connection for %v; body_timeout is %v", held, timeout)
			}
		})
	}
	// A body sent at once is unaffected, and so is a handler that runs
	// longer than body_timeout after reading it.
	code, body := env.doHeaders("POST", "/reader", strings.Repeat("x", 1000), nil)
	if code != 200 || body != "read 1000 bytes" {
		t.Fatalf("prompt body: %d %q", code, body)
	}
}

// Finding 2: sizes are checked before auth. A declared body over the
// route's limit is refused 413 before the admin API looks at
// credentials; a route that declares a larger limit gets it.
func TestBodySizeBeforeAuth(t *testing.T) {
	env := startEdgeServer(t, nil)
	code, body := env.doHeaders("POST", "/api/admin/tokens", strings.Repeat(" ", 20<<10), map[string]string{"Content-Type": "application/json", noAuth: ""})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"too_large"`) {
		t.Fatalf("20 KiB to the admin API without credentials: %d %s, want 413 too_large", code, body)
	}
	if code, body := env.doHeaders("POST", "/reader", strings.Repeat("x", 20<<10), nil); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("20 KiB to a route with the default limit: %d %s, want 413", code, body)
	}
	if code, body := env.doHeaders("POST", "/big", strings.Repeat("x", 40<<10), nil); code != 200 || body != "read 40960 bytes" {
		t.Fatalf("40 KiB to a route that allows 64 KiB: %d %s", code, body)
	}
}

// noAuth in doHeaders' headers sends an admin request without the API
// key it otherwise gets.
const noAuth = "no-auth"

// doHeaders sends a request with the given headers (Host sets the Host
// header) and returns status and body.
func (e *testEnv) doHeaders(method, path, body string, h map[string]string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		switch k {
		case "Host":
			req.Host = v
		case noAuth:
		default:
			req.Header.Set(k, v)
		}
	}
	if _, skip := h[noAuth]; !skip && req.Header.Get("Authorization") == "" && strings.HasPrefix(path, "/api/admin/") {
		req.SetBasicAuth(testKeyID, testSecret)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// dialFrom opens a WebSocket with extra headers (X-Forwarded-For, Host).
func (e *testEnv) dialFrom(h http.Header) (*websocket.Conn, *http.Response, error) {
	if h.Get("Origin") == "" {
		h.Set("Origin", e.base)
	}
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	ws, resp, err := d.Dial(strings.Replace(e.base, "http", "ws", 1)+"/ws", h)
	if ws != nil {
		e.t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// expectRefused checks a refused WebSocket upgrade: status and JSON code.
func expectRefused(t *testing.T, resp *http.Response, err error, status int, code string) {
	t.Helper()
	if err == nil || resp == nil {
		t.Fatalf("upgrade succeeded (err %v), want HTTP %d", err, status)
	}
	defer resp.Body.Close()
	var eb proto.ErrorBody
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || json.Unmarshal(raw, &eb) != nil || eb.Code != code {
		t.Fatalf("refusal %d %s, want %d with code %q", resp.StatusCode, raw, status, code)
	}
}

// Finding 6: one address may hold only max_unjoined_per_address sockets
// that have not joined; joined ones and closed ones stop counting.
func TestUnjoinedSocketsCappedPerAddress(t *testing.T) {
	env := startEdgeServer(t, func(c *Config) { c.MaxUnjoinedPerAddress = 4 })
	var open []*websocket.Conn
	for i := range 4 {
		ws, _, err := env.dialFrom(http.Header{})
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		open = append(open, ws)
	}
	_, resp, err := env.dialFrom(http.Header{})
	expectRefused(t, resp, err, http.StatusTooManyRequests, "too_many_connections")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}

	// A socket that joins no longer counts.
	c := &client{t: t, ws: open[0], autoPong: true}
	c.send("join", "j", proto.JoinBody{Token: env.token("ada", "r", allGrants), Protocol: 1})
	c.expect("joined")
	if _, _, err := env.dialFrom(http.Header{}); err != nil {
		t.Fatalf("after one socket joined: %v", err)
	}
	// A socket that closes frees its slot.
	_ = open[1].Close()
	testkit.Eventually(t, 5*time.Second, "a closed socket's slot is freed", func() bool {
		ws, _, err := env.dialFrom(http.Header{})
		if err == nil {
			_ = ws.Close()
		}
		return err == nil
	})
}

// Finding 6: behind a trusted reverse proxy the cap counts the forwarded
// client address; from anyone else forwarding headers are ignored.
func TestUnjoinedCapUsesTrustedProxyAddress(t *testing.T) {
	env := startEdgeServer(t, func(c *Config) {
		c.MaxUnjoinedPerAddress = 2
		c.TrustedProxies = []string{"127.0.0.0/8"}
	})
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {"203.0.113.9, " + ip}} }
	for range 2 {
		if _, _, err := env.dialFrom(from("198.51.100.1")); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err := env.dialFrom(from("198.51.100.1"))
	expectRefused(t, resp, err, http.StatusTooManyRequests, "too_many_connections")
	if _, _, err := env.dialFrom(from("198.51.100.2")); err != nil {
		t.Fatalf("another forwarded client refused: %v", err)
	}

	untrusted := startEdgeServer(t, func(c *Config) { c.MaxUnjoinedPerAddress = 2 })
	for i := range 2 {
		if _, _, err := untrusted.dialFrom(from(fmt.Sprintf("198.51.100.%d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err = untrusted.dialFrom(from("198.51.100.3"))
	expectRefused(t, resp, err, http.StatusTooManyRequests, "too_many_connections")
}

// Finding 7: the admin API (signaling's own routes and other components'
// admin routes) and the dev token endpoint take only JSON bodies, refuse
// cross-site requests and reject trailing data.
func TestAdminRefusesCrossSiteAndNonJSON(t *testing.T) {
	env := startEdgeServer(t, func(c *Config) { c.DevMode = true })
	token := `{"room":"r","identity":"ada"}`
	asJSON := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name, path, body string
		h                map[string]string
		want             int
		code             string
	}{
		{"json", "/api/admin/tokens", token, asJSON, 200, ""},
		{"json with charset", "/api/admin/tokens", token, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 200, ""},
		{"text/plain (a cross-site form)", "/api/admin/tokens", token, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"no content type", "/api/admin/tokens", token, nil, 415, "unsupported_media_type"},
		{"cross-site origin", "/api/admin/tokens", token, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "forbidden"},
		{"null origin", "/api/admin/tokens", token, map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403, "forbidden"},
		{"cross-site fetch metadata", "/api/admin/rooms", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "forbidden"},
		{"trailing garbage", "/api/admin/tokens", token + ` {"x":1}`, asJSON, 400, "bad_request"},
		{"trailing text", "/api/admin/tokens", token + "garbage", asJSON, 400, "bad_request"},
		{"trailing whitespace is fine", "/api/admin/tokens", token + "\n\t ", asJSON, 200, ""},
		{"ingress admin text/plain", "/api/admin/ingress", `{"room":"r","name":"n"}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"ingress admin cross-site", "/api/admin/ingress", `{"room":"r","name":"n"}`, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "forbidden"},
		{"mute text/plain", "/api/admin/rooms/r/participants/ada/tracks/TR_1/mute", `{"muted":true}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"dev token text/plain", "/api/dev/token", `{"room":"r"}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"dev token trailing", "/api/dev/token", `{"room":"r"}]`, asJSON, 400, "bad_request"},
		{"dev token json", "/api/dev/token", `{"room":"r"}`, asJSON, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := env.doHeaders("POST", tc.path, tc.body, tc.h)
			if tc.path == "/api/admin/rooms" {
				code, body = env.doHeaders("GET", tc.path, "", tc.h)
			}
			if code != tc.want {
				t.Fatalf("status %d %s, want %d", code, body, tc.want)
			}
			var eb proto.ErrorBody
			if tc.code != "" && (json.Unmarshal([]byte(body), &eb) != nil || eb.Code != tc.code) {
				t.Fatalf("body %s, want code %q", body, tc.code)
			}
		})
	}
}

// Finding 10: in dev mode a rebound name (Host: evil.example with a
// matching Origin) gets neither guest tokens nor a WebSocket; loopback,
// IP literals, localhost and dev_allowed_hosts do.
func TestDevModeRefusesRebindingHosts(t *testing.T) {
	env := startEdgeServer(t, func(c *Config) {
		c.DevMode = true
		c.DevAllowedHosts = []string{"devbox.lan"}
	})
	port := env.base[strings.LastIndex(env.base, ":")+1:]
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"evil.example:" + port, false},
		{"evil.example", false},
		{"localhost.evil.example:" + port, false},
		{"127.0.0.1:" + port, true},
		{"localhost:" + port, true},
		{"app.localhost:" + port, true},
		{"[::1]:" + port, true},
		{"devbox.lan:" + port, true},
		{"DEVBOX.LAN.:" + port, true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			origin := "http://" + tc.host
			code, body := env.doHeaders("POST", "/api/dev/token", `{"room":"r"}`,
				map[string]string{"Host": tc.host, "Origin": origin, "Content-Type": "application/json"})
			if tc.ok != (code == 200) {
				t.Fatalf("guest token for Host %s: %d %s", tc.host, code, body)
			}
			_, resp, err := env.dialFrom(http.Header{"Host": {tc.host}, "Origin": {origin}})
			if tc.ok {
				if err != nil {
					t.Fatalf("WebSocket for Host %s: %v", tc.host, err)
				}
				return
			}
			expectRefused(t, resp, err, http.StatusForbidden, "forbidden")
		})
	}
}

// Outside dev mode the Host check does not apply: tokens come from the
// operator, and proxies may forward any name.
func TestHostCheckOnlyInDevMode(t *testing.T) {
	env := startEdgeServer(t, nil)
	if _, _, err := env.dialFrom(http.Header{"Host": {"meet.example.com"}, "Origin": {"https://meet.example.com"}}); err != nil {
		t.Fatalf("production WebSocket with its own host name: %v", err)
	}
}

// The edge's settings fail validation with their key named.
func TestEdgeConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		key string
		mod func(*Config)
	}{
		{"body_timeout", func(c *Config) { c.BodyTimeout = 0 }},
		{"trusted_proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/40"} }},
		{"forwarded_header", func(c *Config) { c.ForwardedHeader = "x-real-ip" }},
		{"max_unjoined_per_address", func(c *Config) { c.MaxUnjoinedPerAddress = 0 }},
		{"dev_allowed_hosts", func(c *Config) { c.DevAllowedHosts = []string{"http://x:80"} }},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "signaling."+tc.key+":") {
			t.Errorf("%s: got %v", tc.key, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
