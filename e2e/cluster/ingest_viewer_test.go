package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"

	"github.com/parleyhq/parley/internal/client"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// The viewer of ingest_test.go: a subscriber in the stream's room that
// checks the video it gets decodes.

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
