package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
)

// Two Parley processes on one Redis and one PostgreSQL (docs/cluster.md):
// chat crosses nodes, a joiner on the wrong node is sent to the room's
// node, a drained node takes no new room, and when the hosting node is
// SIGKILLed its lease lapses and the room moves to the survivor.
func TestClusterTwoNodes(t *testing.T) {
	env := newClusterEnv(t)
	a := env.startNode(t, "a")
	b := env.startNode(t, "b")
	chatOnly := auth.Grants{Chat: true}
	call := auth.Grants{Subscribe: true, Chat: true}

	// Chat: alice on a opens a direct conversation with bob on b and
	// writes; bob's session learns of the conversation and gets the
	// message live, through the cluster bus.
	bob := dialPeer(t, b.URL, clusterToken(t, "bob", "", chatOnly))
	if ok, code, _ := bob.joinResult(); !ok {
		t.Fatalf("bob's join on b: %s", code)
	}
	alice := dialPeer(t, a.URL, clusterToken(t, "alice", "", chatOnly))
	if ok, code, _ := alice.joinResult(); !ok {
		t.Fatalf("alice's join on a: %s", code)
	}
	alice.send("chat_direct", map[string]any{"identity": "bob"})
	var conv struct {
		Conversation struct{ ID string } `json:"conversation"`
	}
	decode(t, alice.next(10*time.Second, "conversation", "error"), &conv)
	if conv.Conversation.ID == "" {
		t.Fatal("no conversation id")
	}
	var pushed struct {
		Conversation struct{ ID string } `json:"conversation"`
	}
	decode(t, bob.next(10*time.Second, "conversation"), &pushed)
	if pushed.Conversation.ID != conv.Conversation.ID {
		t.Fatalf("bob was told of %q, alice opened %q", pushed.Conversation.ID, conv.Conversation.ID)
	}
	// bob's node subscribes to the conversation when it indexes it; a
	// message sent before that is fetched by the client (chat_sync), so
	// the live push is asserted on a message sent after bob saw it.
	var got struct {
		Text string `json:"text"`
		Seq  int64  `json:"seq"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; got.Text == "" && time.Now().Before(deadline); i++ {
		alice.send("chat_send", map[string]any{"conversationId": conv.Conversation.ID, "clientMsgId": uuid.NewString(), "text": "hello bob"})
		if m := alice.next(10*time.Second, "chat_ack", "error"); m.Type == "error" {
			t.Fatalf("chat_send: %s", m.Data)
		}
		select {
		case m := <-bob.in:
			if m.Type == "message" {
				decode(t, m, &got)
			}
		case <-time.After(time.Second):
		}
	}
	if got.Text != "hello bob" || got.Seq < 1 {
		t.Fatalf("bob on b got %+v, want alice's message from a", got)
	}

	// Placement: the room's first join on a places it there; a joiner on
	// b is sent to a, and joins there.
	carol := dialPeer(t, a.URL, clusterToken(t, "carol", "standup", call))
	if ok, code, _ := carol.joinResult(); !ok {
		t.Fatalf("carol's first join on a: %s", code)
	}
	dave := dialPeer(t, b.URL, clusterToken(t, "dave", "standup", call))
	if ok, code, url := dave.joinResult(); ok || code != "wrong_node" || url != a.URL {
		t.Fatalf("dave's join on b: joined %v, code %q, url %q; want wrong_node with %s", ok, code, url, a.URL)
	}
	daveOnA := dialPeer(t, a.URL, clusterToken(t, "dave", "standup", call))
	if ok, code, _ := daveOnA.joinResult(); !ok {
		t.Fatalf("dave's join on a after the redirect: %s", code)
	}
	daveOnA.close()

	// Drain: `parley cluster drain` on a; a new room is no longer placed
	// on a, the room already there stays.
	out, err := parleyCommand(t, "cluster", "drain", "--config", a.ConfigPath).CombinedOutput()
	if err != nil {
		t.Fatalf("parley cluster drain: %v\n%s", err, out)
	}
	out, err = parleyCommand(t, "cluster", "nodes", "--config", a.ConfigPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "b ") {
		t.Fatalf("parley cluster nodes: %v\n%s", err, out)
	}
	testkit.Eventually(t, 5*time.Second, "a new room joined on a to be sent to b", func() bool {
		p := dialPeer(t, a.URL, clusterToken(t, "erin", randomName("fresh-"), call))
		defer p.close()
		_, code, url := p.joinResult()
		return code == "wrong_node" && url == b.URL
	})
	frank := dialPeer(t, b.URL, clusterToken(t, "frank", "standup", call))
	if ok, code, url := frank.joinResult(); ok || url != a.URL {
		t.Fatalf("standup while a drains: joined %v %q %q, want still on a", ok, code, url)
	}

	// Node loss: a dies without a word; once its lease lapses (1 s) the
	// room is placed on b at the next join.
	a.Kill(t)
	killed := time.Now()
	testkit.Eventually(t, 10*time.Second, "standup to move to b", func() bool {
		p := dialPeer(t, b.URL, clusterToken(t, "carol", "standup", call))
		ok, _, _ := p.joinResult()
		if !ok {
			p.close()
		}
		return ok
	})
	if d := time.Since(killed); d > 5*time.Second {
		t.Fatalf("the room moved %v after its node died (lease 1 s)", d)
	}
}

func decode(t *testing.T, m wsMsg, v any) {
	t.Helper()
	if m.Type == "error" {
		t.Fatalf("error: %s", m.Data)
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		t.Fatal(err)
	}
}

// Concurrent first joins of one room through both nodes: one node hosts
// it, every joiner either joined there or was sent there.
func TestClusterConcurrentFirstJoins(t *testing.T) {
	env := newClusterEnv(t)
	nodes := []*testkit.Parley{env.startNode(t, "a"), env.startNode(t, "b")}
	call := auth.Grants{Subscribe: true}
	for round := range 3 {
		room := fmt.Sprint("race-", round)
		type result struct {
			node   string // where the peer dialled
			joined bool
			code   string
			url    string
		}
		results := make(chan result, 10)
		var peers []*wsPeer
		for i := range 10 {
			n := nodes[i%2]
			peers = append(peers, dialPeer(t, n.URL, clusterToken(t, fmt.Sprint("p", i), room, call)))
		}
		var wg sync.WaitGroup
		for i, p := range peers {
			wg.Go(func() {
				ok, code, url := p.joinResult()
				results <- result{node: nodes[i%2].URL, joined: ok, code: code, url: url}
			})
		}
		wg.Wait()
		close(results)
		hosts := map[string]int{}
		for r := range results {
			switch {
			case r.joined:
				hosts[r.node]++
			case r.code == "wrong_node":
				hosts[r.url]++
			default:
				t.Fatalf("%s: a join through %s ended in %q", room, r.node, r.code)
			}
		}
		if len(hosts) != 1 {
			t.Fatalf("%s is hosted by %v, want one node", room, hosts)
		}
		for _, p := range peers {
			p.close()
		}
	}
}

// /healthz names both services of cluster mode.
func TestClusterHealthz(t *testing.T) {
	env := newClusterEnv(t)
	a := env.startNode(t, "a")
	resp, err := http.Get(a.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "redis") || !strings.Contains(string(body), "postgres") {
		t.Fatalf("/healthz %d %s, want redis and postgres reported", resp.StatusCode, body)
	}
	// Every metric of a node carries its id, so several nodes' series
	// stay apart once collected together.
	mcode, metrics := adminDo(t, http.MethodGet, a.URL+"/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, `node="a"`) {
			t.Fatalf("/metrics (%d): a series without the node label: %s", mcode, line)
		}
	}
	if !strings.Contains(metrics, `parley_`) {
		t.Fatalf("/metrics (%d) has no parley series:\n%.500s", mcode, metrics)
	}
}

// TestClusterAdminAPI: the admin API of any node answers for every
// room: the room list names each room's node, and a request about a room
// hosted elsewhere (its participants, removing one) is carried out by
// the hosting node.
func TestClusterAdminAPI(t *testing.T) {
	env := newClusterEnv(t)
	a := env.startNode(t, "a")
	b := env.startNode(t, "b")
	ann := dialPeer(t, a.URL, clusterToken(t, "ann", "adm", auth.Grants{Subscribe: true, Chat: true}))
	if ok, code, _ := ann.joinResult(); !ok {
		t.Fatalf("ann's join on a: %s", code)
	}
	admin := func(method, base, path string) (int, string) { t.Helper(); return adminDo(t, method, base+path) }

	code, body := admin("GET", b.URL, "/api/admin/rooms")
	var list struct {
		Rooms []struct {
			Name         string `json:"name"`
			Participants int    `json:"participants"`
			Node         string `json:"node"`
		} `json:"rooms"`
		Unreachable []string `json:"unreachable"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("GET /api/admin/rooms on b: %d %s", code, body)
	}
	found := false
	for _, r := range list.Rooms {
		if r.Name == "adm" {
			found = r.Node == "a" && r.Participants == 1
		}
	}
	if !found || len(list.Unreachable) != 0 {
		t.Fatalf("b's room list %s: want adm with 1 participant on node a, every node reachable", body)
	}

	code, body = admin("GET", b.URL, "/api/admin/rooms/adm/participants")
	if code != http.StatusOK || !strings.Contains(body, `"identity":"ann"`) {
		t.Fatalf("adm's participants through b: %d %s", code, body)
	}
	if code, body = admin("GET", b.URL, "/api/admin/rooms/nowhere/participants"); code != http.StatusNotFound {
		t.Errorf("a room hosted nowhere through b: %d %s, want 404", code, body)
	}
	if code, body = admin("DELETE", b.URL, "/api/admin/rooms/adm/participants/ann"); code/100 != 2 {
		t.Fatalf("removing ann through b: %d %s", code, body)
	}
	ann.next(10*time.Second, "bye", "removed", "participant_removed")
	if !testkit.Poll(context.Background(), 10*time.Second, 100*time.Millisecond, func() bool {
		code, body := admin("GET", a.URL, "/api/admin/rooms/adm/participants")
		return code == http.StatusNotFound || code == http.StatusOK && !strings.Contains(body, `"identity":"ann"`)
	}) {
		t.Error("ann is still in adm on a after b removed her")
	}
}

// TestClusterDrainOnSIGTERM: a node told to stop drains first. New
// rooms go to the other node at once, the call on it goes on for
// cluster.drain_timeout, then its client is asked to reconnect, the
// node exits cleanly, and the client's rejoin lands on the other node.
func TestClusterDrainOnSIGTERM(t *testing.T) {
	env := newClusterEnv(t)
	a := env.startNode(t, "a")
	b := env.startNode(t, "b")
	call := auth.Grants{Subscribe: true, Chat: true}
	annToken := clusterToken(t, "ann", "drn", call)
	ann := dialPeer(t, a.URL, annToken)
	if ok, code, _ := ann.joinResult(); !ok {
		t.Fatalf("ann's join on a: %s", code)
	}
	if err := syscall.Kill(a.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()

	// New rooms go elsewhere while a drains (it says so in Redis at once).
	fresh := dialPeer(t, a.URL, clusterToken(t, "bob", "fresh", call))
	if ok, code, url := fresh.joinResult(); ok || code != "wrong_node" || url != b.URL {
		t.Errorf("a new room joined on the draining a: joined %v, %q %q; want wrong_node to %s", ok, code, url, b.URL)
	}
	fresh.close()

	// ann's call goes on for the drain timeout (2 s), then she is asked
	// to reconnect.
	var bye struct{ Reason string }
	decode(t, ann.next(10*time.Second, "bye"), &bye)
	after := time.Since(signalled)
	if after < 1500*time.Millisecond || bye.Reason != "reconnect" {
		t.Errorf("bye %q %v after SIGTERM; want reconnect after the 2 s drain", bye.Reason, after)
	}
	select {
	case <-a.Exited():
		if err := a.ExitErr(); err != nil {
			t.Errorf("a exited with %v after its drain", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("a did not exit within 8 s of its drain")
	}
	ann.close()
	again := dialPeer(t, b.URL, annToken)
	if ok, code, url := again.joinResult(); !ok {
		t.Fatalf("ann's rejoin on b: %q %q", code, url)
	}
}
