package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"

	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
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

// ingestNode is a cluster node that also takes RTMP publishes.
type ingestNode struct {
	*testkit.Parley
	id       string
	rtmpPort int
}

// startIngestNode is startNode's cluster configuration with RTMP on a
// loopback port of its own and a short reconnect grace. WHIP is on by
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
	body := fmt.Sprintf(`{"room":%q,"name":%q}`, room, name)
	req, err := http.NewRequest(http.MethodPost, node.URL+"/api/admin/ingress", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(testkit.ParleyAPIKey, testkit.ParleyAPISecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Key struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Key.Key == "" {
		t.Fatalf("create a stream key through %s: HTTP %d, %v, %+v", node.id, resp.StatusCode, err, out)
	}
	return out.Key.ID, out.Key.Key
}

// metric sums the samples of a metric on node's /metrics whose labels
// include every one of labels (`name="value"`); 0 when there is none.
func metric(t *testing.T, node *ingestNode, name string, labels ...string) float64 {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, node.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d", node.id, code)
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
			t.Fatalf("%s on %s: %q: %v", name, node.id, line, err)
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

// received is what a viewer got of one participant's tracks.
type received struct {
	video, audio int
	// h264 is the video as Annex-B from its first key frame on (at most
	// maxH264 bytes), for ffprobe.
	h264 bytes.Buffer
	w    *h264writer.H264Writer
}

const maxH264 = 8 << 20

// ingestViewer is a participant of the room on its hosting node that
// only subscribes, as a viewer of the stream does. It records the stream
// participants that join and leave and what arrives of each
// participant's tracks. Its track readers are joined by close.
type ingestViewer struct {
	t  *testing.T
	c  *client.Client
	wg sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	streams map[string]proto.ParticipantView // stream participants joined, by sid
	left    map[string]time.Time             // participants gone, by sid
	media   map[string]*received             // by participant sid
}

func dialViewer(t *testing.T, ctx context.Context, node *ingestNode, room string) *ingestViewer {
	t.Helper()
	v, err := tryViewer(t, ctx, node, room)
	if err != nil {
		t.Fatalf("the viewer's join of %s on node %s: %v", room, node.id, err)
	}
	return v
}

// tryViewer joins room on node; a refused join is the error (a
// *client.ServerError, e.g. wrong_node with the hosting node's URL).
func tryViewer(t *testing.T, ctx context.Context, node *ingestNode, room string) (*ingestViewer, error) {
	t.Helper()
	v := &ingestViewer{t: t, streams: map[string]proto.ParticipantView{}, left: map[string]time.Time{}, media: map[string]*received{}}
	c, err := client.Dial(ctx, client.Options{
		URL: "ws" + strings.TrimPrefix(node.URL, "http") + "/ws", Origin: node.URL,
		Token:   clusterToken(t, "viewer", room, auth.Grants{Subscribe: true}),
		OnEvent: v.event,
		OnTrack: v.track,
	})
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.c = c
	// Streams already in the room are in the join's answer, not in a
	// participant_joined.
	for _, p := range c.Joined.Participants {
		if _, seen := v.streams[p.SID]; p.Stream && !seen {
			v.streams[p.SID] = p
		}
	}
	v.mu.Unlock()
	t.Cleanup(v.close)
	return v, nil
}

// dialViewerVia joins room through via and, when via answers wrong_node,
// on the node it names, as the web client does; it returns the viewer
// and the node it is on.
func dialViewerVia(t *testing.T, ctx context.Context, nodes []*ingestNode, via *ingestNode, room string) (*ingestViewer, *ingestNode) {
	t.Helper()
	v, err := tryViewer(t, ctx, via, room)
	if err == nil {
		return v, via
	}
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != "wrong_node" {
		t.Fatalf("the viewer's join of %s through %s: %v", room, via.id, err)
	}
	for _, n := range nodes {
		if n.URL == se.URL {
			return dialViewer(t, ctx, n, room), n
		}
	}
	t.Fatalf("%s sent the viewer to %q, which is no node of the cluster", via.id, se.URL)
	return nil, nil
}

func (v *ingestViewer) event(typ string, data json.RawMessage) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch typ {
	case proto.TypeParticipantJoined:
		var b proto.ParticipantBody
		if json.Unmarshal(data, &b) == nil && b.Participant.Stream {
			v.streams[b.Participant.SID] = b.Participant
		}
	case proto.TypeParticipantLeft:
		var b proto.ParticipantLeftBody
		if json.Unmarshal(data, &b) == nil {
			v.left[b.SID] = time.Now()
		}
	}
}

func (v *ingestViewer) track(participant, _ string, tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return // the connection is going away; nobody would join a reader
	}
	m := v.media[participant]
	if m == nil {
		m = &received{}
		m.w = h264writer.NewWith(&m.h264)
		v.media[participant] = m
	}
	isVideo := tr.Kind() == webrtc.RTPCodecTypeVideo && strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264)
	v.wg.Go(func() {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.got(m, p, isVideo)
		}
	})
}

func (v *ingestViewer) got(m *received, p *rtp.Packet, isVideo bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !isVideo {
		m.audio++
		return
	}
	m.video++
	if m.h264.Len() < maxH264 {
		_ = m.w.WriteRTP(p) // a packet it cannot depacketize is lost video, which ffprobe then shows
	}
}

func (v *ingestViewer) close() {
	v.mu.Lock()
	already := v.closed
	v.closed = true
	v.mu.Unlock()
	if already {
		return
	}
	v.mu.Lock()
	c := v.c
	v.mu.Unlock()
	_ = c.Close()
	v.wg.Wait()
}

// waitStream waits for a stream participant named name and returns it.
func (v *ingestViewer) waitStream(limit time.Duration, name string) proto.ParticipantView {
	v.t.Helper()
	var found proto.ParticipantView
	testkit.Eventually(v.t, limit, "a stream participant named "+name+" to join the viewer's room", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, p := range v.streams {
			if p.Name == name {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// counts returns the packets received of sid's video and audio and a
// copy of its H.264.
func (v *ingestViewer) counts(sid string) (video, audio int, h264 []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.media[sid]
	if m == nil {
		return 0, 0, nil
	}
	return m.video, m.audio, bytes.Clone(m.h264.Bytes())
}

// waitDecodable waits until sid's received video decodes (ffprobe) to at
// least frames frames of w x h and its audio brought at least
// audioPackets packets.
func (v *ingestViewer) waitDecodable(limit time.Duration, sid string, w, h, frames, audioPackets int) {
	v.t.Helper()
	var last string
	ok := testkit.Poll(context.Background(), limit, time.Second, func() bool {
		video, audio, data := v.counts(sid)
		pw, ph, n, err := probeH264(v.t, data)
		last = fmt.Sprintf("%d video packets (%d bytes of H.264: %dx%d, %d frames decoded, %v), %d audio packets", video, len(data), pw, ph, n, err, audio)
		return err == nil && pw == w && ph == h && n >= frames && audio >= audioPackets
	})
	if !ok {
		v.t.Fatalf("the viewer did not get %d decodable %dx%d frames and %d audio packets of %s within %v: %s", frames, w, h, audioPackets, sid, limit, last)
	}
	v.t.Logf("viewer: %s", last)
}

// waitLeft waits until sid left the viewer's room and returns when.
func (v *ingestViewer) waitLeft(limit time.Duration, sid string) time.Time {
	v.t.Helper()
	var at time.Time
	testkit.Eventually(v.t, limit, "the stream participant "+sid+" to leave", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		var ok bool
		at, ok = v.left[sid]
		return ok
	})
	return at
}

// probeH264 has ffprobe decode an Annex-B H.264 stream and returns its
// size and the frames it decoded.
func probeH264(t *testing.T, data []byte) (w, h, frames int, err error) {
	t.Helper()
	if len(data) == 0 {
		return 0, 0, 0, errors.New("no H.264 yet")
	}
	file := filepath.Join(t.TempDir(), "video.h264")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-f", "h264", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,nb_read_frames", "-of", "json", file).Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ffprobe: %w", err)
	}
	var probe struct {
		Streams []struct {
			Width  int    `json:"width"`
			Height int    `json:"height"`
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		return 0, 0, 0, fmt.Errorf("ffprobe said %s (%v)", out, err)
	}
	s := probe.Streams[0]
	frames, _ = strconv.Atoi(s.Frames)
	return s.Width, s.Height, frames, nil
}

// needFFmpeg fails the test when ffmpeg or ffprobe is missing.
func needFFmpeg(t *testing.T) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err == nil {
		_, err = exec.LookPath("ffprobe")
	}
	if err != nil {
		t.Fatal("ffmpeg and ffprobe are needed: `apt-get install -y ffmpeg` (or run ./scripts/test)")
	}
	return ffmpeg
}

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
// as a local WHIP publish, b has only the relay and nothing in its own
// SFU. Stopping ffmpeg DELETEs the relay's WHIP resource and the
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

// listedOn returns the node that via's admin API lists room on with
// someone in it, or "" when no node does yet.
func listedOn(t *testing.T, via *ingestNode, room string) string {
	t.Helper()
	code, body := adminDo(t, http.MethodGet, via.URL+"/api/admin/rooms")
	var list struct {
		Rooms []struct {
			Name         string `json:"name"`
			Participants int    `json:"participants"`
			Node         string `json:"node"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/admin/rooms on %s: %d %s", via.id, code, body)
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

// rtmpPublisher is ffmpeg publishing a 320x240 30 fps H.264 + AAC test
// pattern over RTMP, as OBS would (baseline, no B-frames, a key frame a
// second, 48 kHz stereo AAC), for at most 60 s.
type rtmpPublisher struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    testkit.SyncBuffer
	cancel context.CancelFunc
	exited chan struct{}
}

func startRTMP(t *testing.T, ctx context.Context, ffmpeg string, node *ingestNode, key string) *rtmpPublisher {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	p := &rtmpPublisher{t: t, cancel: cancel, exited: make(chan struct{})}
	p.cmd = exec.CommandContext(pctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "60", "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "48000", "-ac", "2", "-f", "flv",
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", node.rtmpPort, key))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cancel() // kills ffmpeg if it still runs
		<-p.exited
		if t.Failed() {
			t.Logf("ffmpeg: %s", p.out.String())
		}
	})
	return p
}

// stop ends the publish as a streamer's Stop does (SIGINT: ffmpeg
// closes its RTMP stream), waits up to 15 s for ffmpeg to exit and
// returns when it was told to stop.
func (p *rtmpPublisher) stop() time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.t.Fatal("ffmpeg did not stop within 15 s of SIGINT")
	}
	return at
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

// candidatePorts lists the ports of an SDP's candidates.
func candidatePorts(sdp string) []int {
	var out []int
	for _, line := range strings.Split(sdp, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:")
		if !ok {
			continue
		}
		// foundation component transport priority address port typ ...
		f := strings.Fields(rest)
		if len(f) < 6 {
			continue
		}
		if p, err := strconv.Atoi(f[5]); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// whipDo makes one WHIP request and returns the response and its body.
func whipDo(t *testing.T, method, target, key, contentType, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp, string(b)
}

// encodeH264 has ffmpeg encode 3 s of a 160x120 test pattern at 10 fps
// (baseline, a key frame a second, one slice per frame) and returns it as
// access units in Annex-B, each a frame's NAL units (SPS and PPS go with
// the key frame they precede).
func encodeH264(t *testing.T, ctx context.Context, ffmpeg string) [][]byte {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ectx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-t", "3",
		"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-g", "10", "-threads", "1",
		"-pix_fmt", "yuv420p", "-f", "h264", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg encoding the WHIP publisher's video: %v", err)
	}
	r, err := h264reader.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var units [][]byte
	var cur []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
			units = append(units, cur)
			cur = nil
		}
	}
	if len(units) < 20 {
		t.Fatalf("ffmpeg made %d frames, want 30", len(units))
	}
	return units
}

// whipPublisher is a WHIP encoder as OBS is one: a send-only H.264 and
// Opus PeerConnection whose offer carries every candidate (no trickle).
type whipPublisher struct {
	t            *testing.T
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	stop         chan struct{}
	wg           sync.WaitGroup
	once         sync.Once
}

func newWHIPPublisher(t *testing.T) *whipPublisher {
	t.Helper()
	pc, err := client.LoopbackAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &whipPublisher{t: t, pc: pc, stop: make(chan struct{})}
	t.Cleanup(p.close)
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "encoder")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "encoder")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticSample{p.video, p.audio} {
		tc, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		// RTCP (the hosting node's PLIs and reports) is read so pion's
		// interceptors see it; the sender's reads end when pc closes.
		p.wg.Go(func() {
			for {
				if _, _, err := tc.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		})
	}
	return p
}

// offer is the local offer once ICE gathering completed.
func (p *whipPublisher) offer() string {
	p.t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		p.t.Fatal("ICE gathering did not complete within 10 s")
	}
	return p.pc.LocalDescription().SDP
}

// start applies the answer and sends frames in a loop at 10 fps, with a
// 20 ms Opus packet every 20 ms, until close (at most 60 s).
func (p *whipPublisher) start(answer string, frames [][]byte) {
	p.t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.t.Fatal(err)
	}
	p.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		// An Opus frame of silence (CELT, 20 ms).
		silence := []byte{0xf8, 0xff, 0xfe}
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			_ = p.audio.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond})
			if i%5 == 0 {
				_ = p.video.WriteSample(media.Sample{Data: frames[(i/5)%len(frames)], Duration: 100 * time.Millisecond})
			}
		}
	})
}

func (p *whipPublisher) close() {
	p.once.Do(func() {
		close(p.stop)
		_ = p.pc.Close()
		p.wg.Wait()
	})
}
