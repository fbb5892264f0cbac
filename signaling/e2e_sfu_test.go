package signaling

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/sfu/sfutest"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// This test runs the real SFU behind signaling: media flows over pion's
// virtual network (no host UDP), signaling over a loopback WebSocket.
// It is not inside synctest because the WebSocket uses real sockets.

type e2eEnv struct {
	*testEnv
	vnet *sfutest.VNet
	sfu  *sfu.SFU
}

func startE2E(t *testing.T) *e2eEnv {
	t.Helper()
	// Cleanups run last-registered first: signaling stops, then the SFU,
	// then the virtual network under both.
	vn := sfutest.NewVNet(t, nil)
	scfg := sfu.DefaultConfig()
	scfg.TCPPort = 0 // vnet has no TCP
	s, err := sfu.New(scfg, sfu.Deps{Registry: prometheus.NewRegistry(), Net: vn.SFU})
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunInBackground(t, "SFU Run", s.Run)

	cfg := testConfig()
	keys, err := auth.NewKeySet(map[string]string{testKeyID: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Deps{Media: SFUMedia(s), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	testkit.RunInBackground(t, "signaling Run", srv.Run)
	testkit.Eventually(t, waitLimit, "listener", func() bool { return srv.Addr() != nil })
	env := &e2eEnv{
		testEnv: &testEnv{t: t, srv: srv, keys: keys, base: "http://" + srv.Addr().String()},
		vnet:    vn, sfu: s,
	}
	return env
}

// rtcClient plays the browser: one WebSocket driven by the protocol
// messages, and an sfutest client (publisher and subscriber
// PeerConnections) whose answers and candidates it sends.
type rtcClient struct {
	*sfutest.Client
	t   testing.TB
	ws  *websocket.Conn
	wmu sync.Mutex

	msgs chan msg // everything not handled here
	wg   sync.WaitGroup
}

func (e *e2eEnv) newRTCClient(identity string, g auth.Grants) (*rtcClient, proto.JoinedBody) {
	t := e.t
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.base, "http", "ws", 1)+"/ws", http.Header{"Origin": {e.base}})
	if err != nil {
		t.Fatal(err)
	}
	c := &rtcClient{t: t, ws: ws, msgs: make(chan msg, 256)}
	c.Client = sfutest.NewClient(t, identity, sfutest.Options{VNet: e.vnet}, c)
	// Registered after the sfutest client's, so it runs first: the read
	// loop stops before the PeerConnections close.
	t.Cleanup(c.close)
	c.wg.Go(c.readLoop)
	c.send("join", "j", proto.JoinBody{Token: e.token(identity, "room", g), Protocol: 1})
	m := c.expect("joined")
	var jb proto.JoinedBody
	m.decode(t, &jb)
	return c, jb
}

func (c *rtcClient) close() {
	_ = c.ws.Close()
	c.wg.Wait()
}

func (c *rtcClient) send(typ, id string, data any) {
	env := map[string]any{"type": typ, "data": data}
	if id != "" {
		env["id"] = id
	}
	raw, err := json.Marshal(env)
	if err != nil {
		c.t.Error(err)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, raw)
}

// Answer and Candidate are the sfutest.Signal: the client's answers and
// candidates go out as protocol messages.
func (c *rtcClient) Answer(ans webrtc.SessionDescription) error {
	c.send("answer", "", proto.SDPBody{SDP: ans.SDP})
	return nil
}

func (c *rtcClient) Candidate(target sfu.Target, j webrtc.ICECandidateInit) error {
	c.send("candidate", "", proto.CandidateBody{Target: target.String(), Candidate: &proto.CandidateInit{
		Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex, UsernameFragment: j.UsernameFragment,
	}})
	return nil
}

// readLoop hands negotiation to the sfutest client, as the web client
// does with its PeerConnections, and forwards everything else to msgs.
func (c *rtcClient) readLoop() {
	defer close(c.msgs)
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m msg
		if err := json.Unmarshal(raw, &m); err != nil {
			c.t.Errorf("invalid JSON from server: %v", err)
			return
		}
		switch m.Type {
		case "ping":
			var pb proto.PingBody
			_ = json.Unmarshal(m.Data, &pb)
			c.send("pong", "", pb)
		case "offer":
			var b proto.SDPBody
			_ = json.Unmarshal(m.Data, &b)
			c.SubscriberOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: b.SDP})
		case "answer":
			var b proto.SDPBody
			_ = json.Unmarshal(m.Data, &b)
			c.PublisherAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: b.SDP})
		case "candidate":
			var b proto.CandidateBody
			_ = json.Unmarshal(m.Data, &b)
			target := sfu.Publisher
			if b.Target == "subscriber" {
				target = sfu.Subscriber
			}
			c.ICECandidate(target, &webrtc.ICECandidateInit{Candidate: b.Candidate.Candidate, SDPMid: b.Candidate.SDPMid,
				SDPMLineIndex: b.Candidate.SDPMLineIndex, UsernameFragment: b.Candidate.UsernameFragment})
		default:
			c.msgs <- m
		}
	}
}

func (c *rtcClient) expect(typ string) msg {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("connection closed waiting for %s", typ)
			}
			if m.Type == typ {
				return m
			}
			if m.Type == "error" || m.Type == "bye" {
				c.t.Fatalf("got %s %s waiting for %s", m.Type, m.Data, typ)
			}
		case <-timeout:
			c.t.Fatalf("timed out waiting for %s", typ)
		}
	}
}

// received counts the RTP packets received on one remote stream.
func (c *rtcClient) received(stream string) int {
	n := 0
	for _, rt := range c.RemoteTracks() {
		if rt.StreamID == stream {
			n += rt.Count
		}
	}
	return n
}

func TestCallThroughRealSFU(t *testing.T) {
	env := startE2E(t)
	ada, aj := env.newRTCClient("ada", allGrants)

	// The client sends an Opus-track packet every 20 ms until the test
	// ends.
	ada.AddTrack("audio", "mic-ada")
	ada.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "mic-ada", Kind: "audio", Source: "microphone"}}})
	ada.expect("published")
	ada.send("offer", "o", proto.SDPBody{SDP: ada.Offer(false).SDP})

	var upd proto.ParticipantBody
	ada.expect("participant_updated").decode(t, &upd)
	if len(upd.Participant.Tracks) != 1 {
		t.Fatalf("ada's tracks %+v", upd.Participant.Tracks)
	}
	tv := upd.Participant.Tracks[0]
	if tv.TrackID != "mic-ada" || tv.Source != "microphone" || tv.Kind != "audio" || !strings.HasPrefix(tv.SID, "TR_") {
		t.Fatalf("track %+v", tv)
	}

	bob, bj := env.newRTCClient("bob", auth.Grants{Subscribe: true})
	if len(bj.Participants) != 1 || len(bj.Participants[0].Tracks) != 1 || bj.Participants[0].Tracks[0].SID != tv.SID {
		t.Fatalf("bob's snapshot %+v", bj.Participants)
	}
	stream := aj.Participant.SID + "|" + tv.SID
	testkit.Eventually(t, waitLimit, "bob receives ada's audio", func() bool { return bob.received(stream) >= 10 })

	ada.send("leave", "", nil)
	var left proto.ParticipantLeftBody
	bob.expect("participant_left").decode(t, &left)
	if left.SID != aj.Participant.SID {
		t.Fatalf("left %+v", left)
	}
	testkit.Eventually(t, waitLimit, "SFU forgets ada's track", func() bool { return len(env.sfu.RoomStats("room")) == 0 })
}
