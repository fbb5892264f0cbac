package signaling

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"
	"github.com/pion/transport/v4/vnet"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/logging"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// This test runs the real SFU behind signaling: media flows over pion's
// virtual network (no host UDP), signaling over a loopback WebSocket.
// It is not inside synctest because the WebSocket uses real sockets.

const e2eSFUIP = "10.77.0.2"

type e2eEnv struct {
	*testEnv
	router *vnet.Router
	sfu    *sfu.SFU
	nextIP int
}

func startE2E(t *testing.T) *e2eEnv {
	t.Helper()
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.77.0.0/24", LoggerFactory: logging.PionFactory(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	sfuNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{e2eSFUIP}})
	if err != nil {
		t.Fatal(err)
	}
	if err := router.AddNet(sfuNet); err != nil {
		t.Fatal(err)
	}
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	scfg := sfu.DefaultConfig()
	scfg.TCPPort = 0 // vnet has no TCP
	s, err := sfu.New(scfg, sfu.Deps{Registry: prometheus.NewRegistry(), Net: sfuNet})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: signaling stops, then the SFU,
	// then the virtual network under both.
	t.Cleanup(func() { _ = router.Stop() })
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
		router:  router, sfu: s, nextIP: 10,
	}
	return env
}

// rtcClient plays the browser: one WebSocket, a publisher and a
// subscriber PeerConnection, driven by the protocol messages.
type rtcClient struct {
	t   testing.TB
	ws  *websocket.Conn
	wmu sync.Mutex
	api *webrtc.API
	pub *webrtc.PeerConnection
	sub *webrtc.PeerConnection

	msgs chan msg // everything not handled here
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending map[string][]webrtc.ICECandidateInit
	streams map[string]int // remote stream id -> RTP packets received
}

func (e *e2eEnv) newRTCClient(identity string, g auth.Grants) (*rtcClient, proto.JoinedBody) {
	t := e.t
	e.nextIP++
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"10.77.0." + strconv.Itoa(e.nextIP)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.router.AddNet(n); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{LoggerFactory: logging.PionFactory(slog.New(slog.DiscardHandler))}
	se.SetNet(n)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.base, "http", "ws", 1)+"/ws", http.Header{"Origin": {e.base}})
	if err != nil {
		t.Fatal(err)
	}
	c := &rtcClient{
		t: t, ws: ws,
		api:     webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)),
		msgs:    make(chan msg, 256),
		done:    make(chan struct{}),
		pending: map[string][]webrtc.ICECandidateInit{},
		streams: map[string]int{},
	}
	for _, target := range []string{"publisher", "subscriber"} {
		pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		target := target
		pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
			if ic != nil {
				j := ic.ToJSON()
				c.send("candidate", "", proto.CandidateBody{Target: target, Candidate: &proto.CandidateInit{
					Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex, UsernameFragment: j.UsernameFragment,
				}})
			}
		})
		if target == "publisher" {
			c.pub = pc
		} else {
			c.sub = pc
		}
	}
	c.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			c.mu.Lock()
			c.streams[tr.StreamID()]++
			c.mu.Unlock()
		}
	})
	t.Cleanup(c.close)
	c.wg.Add(1)
	go c.readLoop()
	c.send("join", "j", proto.JoinBody{Token: e.token(identity, "room", g), Protocol: 1})
	m := c.expect("joined")
	var jb proto.JoinedBody
	m.decode(t, &jb)
	return c, jb
}

func (c *rtcClient) close() {
	// Stop the read loop before closing the PeerConnections: an offer it
	// is still handling must not meet a closed connection.
	_ = c.ws.Close()
	c.wg.Wait()
	_ = c.pub.Close()
	_ = c.sub.Close()
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

func (c *rtcClient) pc(target string) *webrtc.PeerConnection {
	if target == "subscriber" {
		return c.sub
	}
	return c.pub
}

// readLoop handles negotiation like the web client does and forwards
// everything else to msgs.
func (c *rtcClient) readLoop() {
	defer c.wg.Done()
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
			if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: b.SDP}); err != nil {
				c.t.Errorf("subscriber offer: %v", err)
				continue
			}
			c.flush("subscriber")
			ans, err := c.sub.CreateAnswer(nil)
			if err == nil {
				err = c.sub.SetLocalDescription(ans)
			}
			if err != nil {
				c.t.Errorf("subscriber answer: %v", err)
				continue
			}
			c.send("answer", "", proto.SDPBody{SDP: ans.SDP})
		case "answer":
			var b proto.SDPBody
			_ = json.Unmarshal(m.Data, &b)
			if err := c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: b.SDP}); err != nil {
				c.t.Errorf("publisher answer: %v", err)
			}
			c.flush("publisher")
		case "candidate":
			var b proto.CandidateBody
			_ = json.Unmarshal(m.Data, &b)
			ci := webrtc.ICECandidateInit{Candidate: b.Candidate.Candidate, SDPMid: b.Candidate.SDPMid,
				SDPMLineIndex: b.Candidate.SDPMLineIndex, UsernameFragment: b.Candidate.UsernameFragment}
			c.mu.Lock()
			if c.pc(b.Target).RemoteDescription() == nil {
				c.pending[b.Target] = append(c.pending[b.Target], ci)
				c.mu.Unlock()
				continue
			}
			c.mu.Unlock()
			if err := c.pc(b.Target).AddICECandidate(ci); err != nil {
				c.t.Errorf("add candidate: %v", err)
			}
		default:
			c.msgs <- m
		}
	}
}

func (c *rtcClient) flush(target string) {
	c.mu.Lock()
	list := c.pending[target]
	c.pending[target] = nil
	c.mu.Unlock()
	for _, ci := range list {
		if err := c.pc(target).AddICECandidate(ci); err != nil {
			c.t.Errorf("add candidate: %v", err)
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

func (c *rtcClient) received(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[stream]
}

func TestCallThroughRealSFU(t *testing.T) {
	env := startE2E(t)
	ada, aj := env.newRTCClient("ada", allGrants)

	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic-ada", "stream-ada")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ada.pub.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	ada.send("publish", "p", proto.PublishBody{Tracks: []proto.TrackAnnouncement{{TrackID: "mic-ada", Kind: "audio", Source: "microphone"}}})
	ada.expect("published")
	offer, err := ada.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ada.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	ada.send("offer", "o", proto.SDPBody{SDP: offer.SDP})

	// Send Opus-sized RTP packets every 20 ms until the test ends.
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: make([]byte, 80)})
		}
	}()
	defer func() { close(stop); sender.Wait() }()

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
