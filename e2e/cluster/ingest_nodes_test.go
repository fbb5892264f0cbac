package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// Cluster nodes with ingest on, and what their admin API and metrics
// say, for ingest_test.go.

// ingestNode is a cluster node that also takes RTMP publishes.
type ingestNode struct {
	*testkit.Parley
	id       string
	rtmpPort int
}

// startIngestNode is startNode's cluster configuration with RTMP on a
// loopback port of its own, a short reconnect grace and a frequent key
// check. WHIP is on by
// default, on the same path on every node, as relaying needs.
func (e clusterEnv) startIngestNode(t *testing.T, id string) *ingestNode {
	t.Helper()
	port := testkit.FreeTCPPort(t)
	cfg := map[string]any{
		"chat": map[string]any{"store": "postgres", "postgres_url": e.pgURL},
		"cluster": map[string]any{
			"redis_url": e.redisURL, "node_id": id, "key_prefix": e.prefix,
			"lease_ttl": "1s", "room_ttl": "3s", "drain_timeout": "2s",
		},
		"rtmp":   map[string]any{"enabled": true, "listen": fmt.Sprintf("127.0.0.1:%d", port)},
		"ingest": map[string]any{"reconnect_grace": ingestGrace.String(), "key_check_interval": keyCheck.String()},
	}
	return &ingestNode{Parley: testkit.StartParley(t, testkit.ParleyOptions{Bin: parley.Bin(t), Config: cfg}), id: id, rtmpPort: port}
}

// startIngestCluster starts nodes a, b and c. Placement breaks ties by
// the lowest id, so a room first joined on an idle cluster lands on a.
func startIngestCluster(t *testing.T) (a, b, c *ingestNode) {
	t.Helper()
	env := newClusterEnv(t)
	return env.startIngestNode(t, "a"), env.startIngestNode(t, "b"), env.startIngestNode(t, "c")
}

// createStreamKey makes a stream key through node's admin API and
// returns its id and secret.
func createStreamKey(t *testing.T, node *ingestNode, room, name string) (id, secret string) {
	t.Helper()
	return testkit.CreateStreamKey(t, node.URL, room, name)
}

// metric sums the samples of a metric on node's /metrics whose labels
// include every one of labels (`name="value"`); 0 when there is none.
func metric(t *testing.T, node *ingestNode, name string, labels ...string) float64 {
	t.Helper()
	return metricAt(t, node.URL, name, labels...)
}

// metricAt sums the series of name (with every one of labels) on the
// node at base.
func metricAt(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d", base, code)
	}
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(series, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatalf("%s on %s: %q: %v", name, base, line, err)
		}
		sum += v
	}
	return sum
}

// waitMetric waits until metric(...) == want.
func waitMetric(t *testing.T, limit time.Duration, node *ingestNode, want float64, name string, labels ...string) {
	t.Helper()
	var got float64
	if !testkit.Poll(context.Background(), limit, 200*time.Millisecond, func() bool {
		got = metric(t, node, name, labels...)
		return got == want
	}) {
		t.Fatalf("%s%v on node %s is %v, want %v (waited %v)", name, labels, node.id, got, want, limit)
	}
}

// streamParticipant is what the admin API says of one participant.
type streamParticipant struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Tracks   []struct {
		Kind  string `json:"kind"`
		Stats *struct {
			Packets uint64 `json:"packets"`
		} `json:"stats"`
	} `json:"tracks"`
}

// participantsVia lists room's participants through via's admin API (a
// node that does not host the room asks the one that does).
func participantsVia(t *testing.T, via *ingestNode, room string) []streamParticipant {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, via.URL+"/api/admin/rooms/"+url.PathEscape(room)+"/participants")
	var out struct {
		Participants []streamParticipant `json:"participants"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("participants of %s through %s: %d %s", room, via.id, code, body)
	}
	return out.Participants
}

// streamInRoom reports whether identity is in room, per via's admin API,
// with a video and an audio track that both carried packets to the
// hosting node's SFU.
func streamInRoom(t *testing.T, via *ingestNode, room, identity string) bool {
	t.Helper()
	for _, p := range participantsVia(t, via, room) {
		if p.Identity != identity {
			continue
		}
		flowing := map[string]bool{}
		for _, tr := range p.Tracks {
			flowing[tr.Kind] = tr.Stats != nil && tr.Stats.Packets > 0
		}
		return flowing["video"] && flowing["audio"]
	}
	return false
}

// listedOn returns the node that via's admin API lists room on with
// someone in it, or "" when no node does yet.
func listedOn(t *testing.T, via *ingestNode, room string) string {
	t.Helper()
	return hostOf(t, via.URL, room)
}

// logHasLine reports whether one line of node's log holds every one of
// parts.
func logHasLine(t *testing.T, node *ingestNode, parts ...string) bool {
	t.Helper()
	data, err := os.ReadFile(node.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
