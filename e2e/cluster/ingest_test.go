package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// The ingest paths of cluster mode as a streamer meets them
// (ingest/README.md, "WHIP in a cluster" and "Cluster mode: RTMP relayed
// to the room's node"): three real nodes on one Redis and one
// PostgreSQL, a stream key made through one node's admin API, an encoder
// that reaches a node which does not host the key's room, and a viewer
// in the room on the node that does.

// ingestGrace is the nodes' ingest.reconnect_grace: a stream's
// participant leaves this long after its publisher stops (the default
// 10 s would only make the tests slower).
const ingestGrace = 2 * time.Second

// keyCheck is the nodes' ingest.key_check_interval: a key revoked while
// its stream is live ends the stream within it (default 5 s).
const keyCheck = time.Second

// placeRoomOn has a viewer join room on node (the room's first join, so
// it is placed there) and checks, through another node's admin API, that
// the cluster lists the room on node.
func placeRoomOn(t *testing.T, ctx context.Context, node, other *ingestNode, room string) *ingestViewer {
	t.Helper()
	v := dialViewer(t, ctx, node, room)
	if got := roomNode(t, other.Parley, room); got != node.id {
		t.Fatalf("room %s is on node %s, want %s (the viewer joined there first)", room, got, node.id)
	}
	return v
}

// TestClusterIngestRTMPToWrongNode: OBS (ffmpeg here) publishes over
// RTMP to node b with a key made through b's admin API, for a room that
// node a hosts. b relays the stream to a over WHIP: the viewer on a gets
// decodable video and audio from a stream participant, a has the stream
// as a local WHIP publish, b has only the relay and no room or stream of
// its own. Stopping ffmpeg DELETEs the relay's WHIP resource and the
// participant leaves a's room after the reconnect grace.
func TestClusterIngestRTMPToWrongNode(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, c := startIngestCluster(t)
	const room = "stage"
	viewer := placeRoomOn(t, ctx, a, c, room)

	keyID, key := createStreamKey(t, b, room, "Stage")
	// The key is in PostgreSQL: the other nodes list it too.
	if code, body := adminDo(t, http.MethodGet, a.URL+"/api/admin/ingress"); code != http.StatusOK || !strings.Contains(body, keyID) {
		t.Fatalf("a's key list (%d) lacks the key %s made through b: %s", code, keyID, body)
	}

	pub := startRTMP(t, ctx, ffmpeg, b, key)

	stream := viewer.waitStream(30*time.Second, "Stage")
	if stream.Identity != "ingress-stage" {
		t.Errorf("the stream joined as %q, want the key's default identity ingress-stage", stream.Identity)
	}
	// 30 fps with a key frame a second: a second and a half of video.
	viewer.waitDecodable(30*time.Second, stream.SID, 320, 240, 45, 50)

	// Where the stream is: a WHIP publish on a, in a's room (asked
	// through b's admin API, which asks a), and on b a relay to a's
	// URL with no stream of b's own.
	if !streamInRoom(t, b, room, "ingress-stage") {
		t.Errorf("b's admin API does not show ingress-stage with flowing tracks in %s: %+v", room, participantsVia(t, b, room))
	}
	if got := metric(t, a, "parley_ingest_streams", `protocol="whip"`); got != 1 {
		t.Errorf("a has %v live WHIP streams, want the relayed one", got)
	}
	if got := metric(t, a, "parley_ingest_streams", `protocol="rtmp"`); got != 0 {
		t.Errorf("a has %v live RTMP streams, want 0 (ffmpeg reached b)", got)
	}
	if got := metric(t, b, "parley_ingest_relays"); got != 1 {
		t.Errorf("b relays %v streams, want 1", got)
	}
	if got := metric(t, b, "parley_ingest_streams"); got != 0 {
		t.Errorf("b has %v streams of its own, want 0 (the stream lives on a)", got)
	}
	// b's room list (its own rooms and its peers') has the room on a
	// alone: the stream put nothing in b's directory.
	if got := listedOn(t, b, room); got != a.id {
		t.Errorf("b lists %s on %q, want a", room, got)
	}
	if got := metric(t, c, "parley_ingest_relays") + metric(t, c, "parley_ingest_streams"); got != 0 {
		t.Errorf("c, which nobody used, has %v streams or relays", got)
	}
	// The admin API has no list of live ingest streams (Service.Streams
	// and its relayedTo are not served), so b's log is where the relay
	// names the node it goes to.
	if !logHasLine(t, b, "ingest relay started", a.URL) {
		t.Errorf("b's log has no \"ingest relay started\" line naming %s", a.URL)
	}

	// The streamer stops: ffmpeg ends its publish (SIGINT, as when it
	// finishes), b DELETEs the WHIP resource on a, and the participant
	// leaves after the grace.
	stopAt := pub.stop()
	waitMetric(t, 10*time.Second, a, 1, "parley_ingest_whip_requests_total", `method="DELETE"`, `status="200"`)
	waitMetric(t, 10*time.Second, b, 0, "parley_ingest_relays")
	left := viewer.waitLeft(ingestGrace+10*time.Second, stream.SID)
	t.Logf("the stream participant left a's room %v after ffmpeg was stopped (reconnect grace %v)", left.Sub(stopAt).Round(100*time.Millisecond), ingestGrace)
	waitMetric(t, 5*time.Second, a, 0, "parley_ingest_streams", `protocol="whip"`)
}

// TestClusterIngestStreamBeforeViewers: the streamer goes live before
// anyone is in the room. ffmpeg publishes over RTMP to node c with a key
// made through a's admin API; the cluster places the empty room on one
// node (the stream lives there alone: a WHIP publish relayed from c, or
// c's own RTMP stream if c is chosen). The stream alone keeps the room's
// claim past cluster.room_ttl, so a viewer arriving later through b is
// sent to that node and receives the stream there.
func TestClusterIngestStreamBeforeViewers(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, c := startIngestCluster(t)
	nodes := []*ingestNode{a, b, c}
	const room = "premiere"
	_, key := createStreamKey(t, a, room, "Premiere")
	pub := startRTMP(t, ctx, ffmpeg, c, key)

	var host string
	testkit.Eventually(t, 30*time.Second, "the stream's room to be listed with its participant", func() bool {
		host = listedOn(t, b, room)
		return host != ""
	})
	var hostNode *ingestNode
	for _, n := range nodes {
		if n.id == host {
			hostNode = n
		}
	}
	t.Logf("the empty room %s was placed on %s; ffmpeg publishes to c", room, host)
	// The stream lives on one node: relayed there by c, or c's own.
	if host == c.id {
		waitMetric(t, 10*time.Second, c, 1, "parley_ingest_streams", `protocol="rtmp"`)
	} else {
		waitMetric(t, 10*time.Second, hostNode, 1, "parley_ingest_streams", `protocol="whip"`)
		// c counts its relay once the connection to the host is up,
		// which may be after the host counted the WHIP publish.
		waitMetric(t, 10*time.Second, c, 1, "parley_ingest_relays")
	}
	var total float64
	for _, n := range nodes {
		total += metric(t, n, "parley_ingest_streams")
	}
	if total != 1 {
		t.Errorf("%v live streams across the cluster, want 1", total)
	}

	// Twice cluster.room_ttl (3 s) with nobody but the stream in the room:
	// its claim must be renewed by the stream alone.
	time.Sleep(6 * time.Second)
	if got := listedOn(t, a, room); got != host {
		t.Fatalf("with only the stream in it, %s moved from %s to %s", room, host, got)
	}
	viewer, on := dialViewerVia(t, ctx, nodes, b, room)
	if on != hostNode {
		t.Fatalf("the viewer who came through b is on %s, the stream on %s", on.id, host)
	}
	stream := viewer.waitStream(10*time.Second, "Premiere")
	viewer.waitDecodable(30*time.Second, stream.SID, 320, 240, 45, 50)

	pub.stop()
	viewer.waitLeft(ingestGrace+10*time.Second, stream.SID)
	for _, n := range nodes {
		waitMetric(t, 5*time.Second, n, 0, "parley_ingest_streams")
		waitMetric(t, 5*time.Second, n, 0, "parley_ingest_relays")
	}
}

// TestClusterIngestRevokeRelayed: a key revoked through a third node's
// admin API ends an RTMP stream relayed between two others: ffmpeg
// (publishing to b, the room on a) is disconnected, the participant
// leaves a's room, and publishing again with the key is refused.
func TestClusterIngestRevokeRelayed(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, c := startIngestCluster(t)
	const room = "keynote"
	viewer := placeRoomOn(t, ctx, a, c, room)
	keyID, key := createStreamKey(t, b, room, "Keynote")
	pub := startRTMP(t, ctx, ffmpeg, b, key)
	stream := viewer.waitStream(30*time.Second, "Keynote")
	viewer.waitDecodable(30*time.Second, stream.SID, 320, 240, 30, 25)
	waitMetric(t, 10*time.Second, b, 1, "parley_ingest_relays")

	if code, body := adminDo(t, http.MethodDelete, c.URL+"/api/admin/ingress/"+url.PathEscape(keyID)); code != http.StatusOK {
		t.Fatalf("revoking the key through c: %d %s", code, body)
	}
	revoked := time.Now()
	// Both b (its relay) and a (its WHIP stream) re-check the key every
	// keyCheck; either one ends the publish.
	select {
	case <-pub.exited:
	case <-time.After(keyCheck + 15*time.Second):
		t.Fatalf("ffmpeg still publishes %v after its key was revoked", time.Since(revoked).Round(time.Second))
	}
	t.Logf("ffmpeg was disconnected %v after the revocation (key check every %v)", time.Since(revoked).Round(100*time.Millisecond), keyCheck)
	viewer.waitLeft(ingestGrace+15*time.Second, stream.SID)
	waitMetric(t, 10*time.Second, b, 0, "parley_ingest_relays")
	waitMetric(t, 10*time.Second, a, 0, "parley_ingest_streams")
	if got := metric(t, a, "parley_ingest_revoked_live_total") + metric(t, b, "parley_ingest_revoked_live_total"); got < 1 {
		t.Errorf("neither a nor b counted a live stream ended by a revocation")
	}

	// The key is dead on every node: publishing again to b is refused.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	again := exec.CommandContext(rctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3", "-c:v", "libx264", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", b.rtmpPort, key))
	if out, err := again.CombinedOutput(); err == nil {
		t.Fatalf("ffmpeg published again with the revoked key: %s", out)
	}
	if got := metric(t, a, "parley_ingest_streams") + metric(t, b, "parley_ingest_relays"); got != 0 {
		t.Errorf("%v streams or relays after a publish with the revoked key", got)
	}
}

// TestClusterIngestWHIPToWrongNode: a WHIP encoder (pion here, sending
// real H.264 made by ffmpeg, and Opus) POSTs to node c for a room node a
// hosts, with a key made through c's admin API. c passes the POST on: the
// encoder gets 201 with a Location on a and an answer with a's media
// ports, its media reaches the viewer on a, c keeps nothing of the
// session, and DELETE on the Location ends the stream.
func TestClusterIngestWHIPToWrongNode(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, c := startIngestCluster(t)
	const room = "studio"
	viewer := placeRoomOn(t, ctx, a, b, room)
	_, key := createStreamKey(t, c, room, "Studio")
	frames := encodeH264(t, ctx, ffmpeg)

	pub := newWHIPPublisher(t)
	resp, answer := whipDo(t, http.MethodPost, c.URL+"/whip", key, "application/sdp", pub.offer())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST c/whip: %d %s", resp.StatusCode, answer)
	}
	location := resp.Header.Get("Location")
	if !strings.HasPrefix(location, a.URL+"/whip/") {
		t.Fatalf("Location %q, want an absolute URL on a (%s/whip/...)", location, a.URL)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("answer Content-Type %q", ct)
	}
	// The answer is a's: its candidates are a's SFU ports, so the media
	// goes straight there.
	ports := candidatePorts(answer)
	if len(ports) == 0 {
		t.Fatalf("the answer carries no candidates (an encoder does not trickle):\n%s", answer)
	}
	for _, p := range ports {
		if p != a.UDPPort && p != a.TCPPort {
			t.Fatalf("the answer has a candidate on port %d; a's SFU is on %d (udp) and %d (tcp), c's on %d and %d", p, a.UDPPort, a.TCPPort, c.UDPPort, c.TCPPort)
		}
	}
	pub.start(answer, frames)

	stream := viewer.waitStream(30*time.Second, "Studio")
	// The publisher sends 10 fps with a key frame a second.
	viewer.waitDecodable(30*time.Second, stream.SID, 160, 120, 15, 50)
	if !streamInRoom(t, c, room, "ingress-studio") {
		t.Errorf("c's admin API does not show ingress-studio with flowing tracks in %s: %+v", room, participantsVia(t, c, room))
	}
	if got := metric(t, a, "parley_ingest_streams", `protocol="whip"`); got != 1 {
		t.Errorf("a has %v live WHIP streams, want the encoder's", got)
	}
	if got := metric(t, c, "parley_ingest_streams"); got != 0 {
		t.Errorf("c has %v streams, want 0 (it only passed the POST on)", got)
	}
	// c keeps nothing of the session: the resource is a's alone.
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := whipDo(t, http.MethodDelete, c.URL+u.Path, key, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE of a's resource path on c: %d %s, want 404", resp.StatusCode, body)
	}

	// The encoder stops: DELETE on Location (a) ends the stream there.
	if resp, body := whipDo(t, http.MethodDelete, location, key, "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", location, resp.StatusCode, body)
	}
	deleted := time.Now()
	pub.close()
	waitMetric(t, 5*time.Second, a, 0, "parley_ingest_streams", `protocol="whip"`)
	left := viewer.waitLeft(ingestGrace+10*time.Second, stream.SID)
	t.Logf("the stream participant left a's room %v after the DELETE (reconnect grace %v)", left.Sub(deleted).Round(100*time.Millisecond), ingestGrace)
	if resp, body := whipDo(t, http.MethodDelete, location, key, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a second DELETE %s: %d %s, want 404", location, resp.StatusCode, body)
	}
}

// TestClusterIngestHostDies: the node hosting a relayed stream's room is
// SIGKILLed. The relaying node notices (ingest/README.md: within about
// 10 s) and ends the RTMP publish, so the encoder reconnects; its
// reconnect is placed on a live node, where a viewer arriving through
// the third node receives it.
func TestClusterIngestHostDies(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, c := startIngestCluster(t)
	const room = "marathon"
	viewer := placeRoomOn(t, ctx, a, c, room)
	_, key := createStreamKey(t, c, room, "Marathon")
	pub := startRTMP(t, ctx, ffmpeg, b, key)
	stream := viewer.waitStream(30*time.Second, "Marathon")
	viewer.waitDecodable(30*time.Second, stream.SID, 320, 240, 30, 25)
	waitMetric(t, 10*time.Second, b, 1, "parley_ingest_relays")

	a.Kill(t)
	killed := time.Now()
	select {
	case <-pub.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("ffmpeg still publishes to b 30 s after the room's node died")
	}
	t.Logf("b ended the relayed publish %v after a was killed", time.Since(killed).Round(100*time.Millisecond))
	waitMetric(t, 5*time.Second, b, 0, "parley_ingest_relays")

	// OBS reconnects to b; the room is placed anew on a live node.
	again := startRTMP(t, ctx, ffmpeg, b, key)
	var host string
	testkit.Eventually(t, 30*time.Second, "the reconnected stream's room to be listed", func() bool {
		host = listedOn(t, c, room)
		return host != ""
	})
	if host == a.id {
		t.Fatalf("%s is listed on the dead node a", room)
	}
	later, on := dialViewerVia(t, ctx, []*ingestNode{b, c}, c, room)
	if on.id != host {
		t.Fatalf("the viewer who came through c is on %s, the stream on %s", on.id, host)
	}
	back := later.waitStream(10*time.Second, "Marathon")
	later.waitDecodable(30*time.Second, back.SID, 320, 240, 30, 25)
	t.Logf("after a's death the stream lives on %s", host)
	again.stop()
	later.waitLeft(ingestGrace+10*time.Second, back.SID)
}

// TestClusterIngestRelayingNodeStops: the node an RTMP encoder streams
// to is stopped (SIGTERM) while it relays the stream to the room's
// node. It exits cleanly, DELETEs the relay's WHIP resource on the way
// out, so the stream ends on the room's node at once, and the encoder is
// disconnected (it reconnects elsewhere).
func TestClusterIngestRelayingNodeStops(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, b, c := startIngestCluster(t)
	const room = "lecture"
	viewer := placeRoomOn(t, ctx, a, c, room)
	_, key := createStreamKey(t, a, room, "Lecture")
	pub := startRTMP(t, ctx, ffmpeg, b, key)
	stream := viewer.waitStream(30*time.Second, "Lecture")
	viewer.waitDecodable(30*time.Second, stream.SID, 320, 240, 30, 25)
	waitMetric(t, 10*time.Second, b, 1, "parley_ingest_relays")

	stopping := time.Now()
	b.Stop(t) // SIGTERM; fails the test unless b exits cleanly within 10 s
	t.Logf("b exited %v after SIGTERM (it hosts no call, so it had nothing to drain)", time.Since(stopping).Round(100*time.Millisecond))
	select {
	case <-pub.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("ffmpeg still runs 10 s after its node exited")
	}
	waitMetric(t, 5*time.Second, a, 1, "parley_ingest_whip_requests_total", `method="DELETE"`, `status="200"`)
	left := viewer.waitLeft(ingestGrace+10*time.Second, stream.SID)
	t.Logf("the stream participant left a's room %v after b was told to stop", left.Sub(stopping).Round(100*time.Millisecond))
}
