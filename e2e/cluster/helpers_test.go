package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// The cluster tests run Parley nodes against the real Redis and
// PostgreSQL on this machine (./scripts/test-services starts them), each
// test in a Redis key prefix and a PostgreSQL schema of its own.
const (
	clusterRedis = "redis://127.0.0.1:6379/0"
	clusterPG    = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// clusterEnv is one test's share of Redis and PostgreSQL.
type clusterEnv struct {
	prefix, pgURL string
	redisURL      string // clusterRedis unless a test runs its own
	// relay sets cluster.relay_signaling on the nodes started.
	relay bool
}

func newClusterEnv(t *testing.T) clusterEnv {
	t.Helper()
	prefix := randomName("parley-e2e-") + ":"
	schema := randomName("parley_e2e_")
	pgExec(t, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() {
		pgExec(t, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		opt, _ := redis.ParseURL(clusterRedis)
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return clusterEnv{prefix: prefix, pgURL: clusterPG + "&search_path=" + schema, redisURL: clusterRedis}
}

func pgExec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, clusterPG)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (./scripts/test-services starts it)", clusterPG, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// startNode runs one cluster node named id; signaling, if given, is
// merged into its signaling section (limits for a storm).
func (e clusterEnv) startNode(t *testing.T, id string, signaling ...map[string]any) *testkit.Parley {
	t.Helper()
	cfg := map[string]any{
		"chat": map[string]any{"store": "postgres", "postgres_url": e.pgURL},
		"cluster": map[string]any{
			"redis_url": e.redisURL, "node_id": id, "key_prefix": e.prefix,
			"lease_ttl": "1s", "room_ttl": "3s",
			// testkit.Parley.Stop waits 10 s for SIGTERM to end a node.
			"drain_timeout":   "2s",
			"relay_signaling": e.relay,
		},
	}
	for _, sig := range signaling {
		cfg["signaling"] = sig
	}
	return testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: cfg})
}

// token is an access token of the nodes' shared API key.
func clusterToken(t *testing.T, identity, room string, g auth.Grants) string {
	t.Helper()
	keys, err := auth.NewKeySet(map[string]string{testkit.ParleyAPIKey: testkit.ParleyAPISecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := keys.Issue(testkit.ParleyAPIKey, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: g}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wsMsg is a received message.
type wsMsg struct {
	Type string          `json:"type"`
	Re   string          `json:"re"`
	Data json.RawMessage `json:"data"`
}

// wsPeer is a protocol client without media: it answers pings and keeps
// every other message for next. Its reader is joined by close.
type wsPeer struct {
	t    *testing.T
	conn *websocket.Conn
	in   chan wsMsg
	done chan struct{}
	mu   sync.Mutex // writes
	n    int
	// shown is each identity's presence as this client shows it (the
	// last status it was told); the test goroutine's only.
	shown map[string]string
}

func dialPeer(t *testing.T, base, token string) *wsPeer {
	t.Helper()
	hdr := http.Header{"Origin": {base}}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", hdr)
	if err != nil {
		t.Fatalf("dial %s: %v", base, err)
	}
	p := &wsPeer{t: t, conn: conn, in: make(chan wsMsg, 256), done: make(chan struct{})}
	go p.read()
	t.Cleanup(p.close)
	p.send("join", map[string]any{"token": token, "protocol": 1})
	return p
}

func (p *wsPeer) read() {
	defer close(p.done)
	defer close(p.in)
	for {
		var m wsMsg
		if err := p.conn.ReadJSON(&m); err != nil {
			return
		}
		if m.Type == "ping" {
			p.send("pong", json.RawMessage(m.Data))
			continue
		}
		select {
		case p.in <- m:
		default: // a test that does not read does not block the reader; it loses messages it did not want
		}
	}
}

func (p *wsPeer) send(typ string, data any) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	id := fmt.Sprint(p.n)
	_ = p.conn.WriteJSON(map[string]any{"type": typ, "id": id, "data": data})
	return id
}

func (p *wsPeer) close() {
	_ = p.conn.Close()
	<-p.done
}

// next returns the next message of one of types, failing after limit or
// when the connection closes first.
func (p *wsPeer) next(limit time.Duration, types ...string) wsMsg {
	p.t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-p.in:
			if !ok {
				p.t.Fatalf("connection closed while waiting for %v", types)
			}
			for _, typ := range types {
				if m.Type == typ {
					return m
				}
			}
		case <-timer.C:
			p.t.Fatalf("no %v within %v", types, limit)
		}
	}
}

// joinResult is what a join ends in: joined, or an error's code and url.
func (p *wsPeer) joinResult() (joined bool, code, url string) {
	p.t.Helper()
	m := p.next(10*time.Second, "joined", "error")
	if m.Type == "joined" {
		return true, "", ""
	}
	var e struct{ Code, Message, URL string }
	if err := json.Unmarshal(m.Data, &e); err != nil {
		p.t.Fatal(err)
	}
	return false, e.Code, e.URL
}

// adminDo makes an admin API request (the nodes' shared API key) and
// returns the status and body.
func adminDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testkit.ParleyAPIKey, testkit.ParleyAPISecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(body)
}

// hostOf returns the node that base's admin API lists room on with
// someone in it, or "" when no node does; two such listings fail.
func hostOf(t *testing.T, base, room string) string {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, base+"/api/admin/rooms")
	var list struct {
		Rooms []struct {
			Name         string `json:"name"`
			Participants int    `json:"participants"`
			Node         string `json:"node"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET %s/api/admin/rooms: %d %s", base, code, body)
	}
	node := ""
	for _, r := range list.Rooms {
		if r.Name == room && r.Participants > 0 {
			if node != "" {
				t.Fatalf("room %s listed on two nodes: %s", room, body)
			}
			node = r.Node
		}
	}
	return node
}
