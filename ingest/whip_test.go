package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu/sfutest"
)

// whipClient is a pion publisher speaking WHIP like OBS: no trickle, the
// offer carries every candidate, H.264 + Opus.
type whipClient struct {
	t        *testing.T
	pc       *webrtc.PeerConnection
	video    *webrtc.TrackLocalStaticRTP
	audio    *webrtc.TrackLocalStaticRTP
	plis     atomic.Int64
	location string
	answer   string
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newWHIPClient(t *testing.T) *whipClient {
	t.Helper()
	api, _ := sfutest.NewAPI(t, sfutest.Options{Logger: testLogger(t), NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}})
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &whipClient{t: t, pc: pc, stop: make(chan struct{})}
	c.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "obs")
	if err != nil {
		t.Fatal(err)
	}
	c.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "obs")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{c.video, c.audio} {
		sender, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		isVideo := tr == c.video
		c.wg.Go(func() {
			for {
				pkts, _, err := sender.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok && isVideo {
						c.plis.Add(1)
					}
				}
			}
		})
	}
	t.Cleanup(c.close)
	return c
}

func (c *whipClient) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	_ = c.pc.Close()
	c.wg.Wait()
}

func (c *whipClient) offer() string {
	c.t.Helper()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		c.t.Fatal("gathering did not complete")
	}
	return c.pc.LocalDescription().SDP
}

func whipRequest(t *testing.T, method, url, token, contentType, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Origin", "https://studio.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp, string(b)
}

// publish POSTs the offer, applies the answer and starts sending media.
func (c *whipClient) publish(base, key string) { c.publishAt(base+"/whip", key, "/whip/") }

// publishAt is publish to endpoint, wanting a Location that starts with
// wantLocation.
func (c *whipClient) publishAt(endpoint, key, wantLocation string) {
	c.t.Helper()
	resp, body := whipRequest(c.t, http.MethodPost, endpoint, key, "application/sdp", c.offer())
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("POST %s: %d %s", endpoint, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		c.t.Fatalf("answer Content-Type %q", ct)
	}
	c.location = resp.Header.Get("Location")
	if !strings.HasPrefix(c.location, wantLocation) {
		c.t.Fatalf("Location %q, want it to start with %q", c.location, wantLocation)
	}
	if !strings.Contains(body, "a=candidate:") {
		c.t.Fatalf("answer carries no candidates (OBS does not trickle):\n%s", body)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		c.t.Fatal(err)
	}
	c.answer = body
	c.wg.Go(c.sendMedia)
}

// sendMedia writes H.264 frames (a key frame with SPS/PPS every 10) and
// Opus packets until stopped (at most 30 s).
func (c *whipClient) sendMedia() {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var vseq, aseq uint16
	frame, aidx := 0, uint32(0)
	start := time.Now()
	for i := 0; time.Since(start) < 30*time.Second; i++ {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if i%3 == 0 {
			var payloads [][]byte
			if frame%10 == 0 {
				payloads = [][]byte{stapA(testSPS, testPPS), append([]byte{0x65, 0x88}, make([]byte, 300)...)}
			} else {
				payloads = [][]byte{append([]byte{0x41, 0x9a}, make([]byte, 100)...)}
			}
			for j, pl := range payloads {
				_ = c.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq,
					Timestamp: uint32(frame * 3000), Marker: j == len(payloads)-1}, Payload: pl})
				vseq++
			}
			frame++
		}
		if i%2 == 0 {
			_ = c.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: aidx * 960},
				Payload: []byte{0xfc, 0x01, 0x02, 0x03}})
			aseq++
			aidx++
		}
	}
}

func startWHIP(t *testing.T, keys rtmp.KeyStore, mod func(*Config)) (*Service, *fakeDir, string, *sfutest.Client) {
	t.Helper()
	s := startSFU(t)
	dir := &fakeDir{}
	cfg := DefaultConfig()
	cfg.ReconnectGrace = 200 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	svc, _ := startService(t, cfg, Deps{Media: s, Keys: keys, Directory: dir})
	mux := http.NewServeMux()
	mux.Handle(cfg.WHIP.Path, svc.WHIPHandler())
	mux.Handle(cfg.WHIP.Path+"/", svc.WHIPHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	v := newViewer(t, s, "stage", "PA_viewer")
	return svc, dir, srv.URL, v
}

func TestWHIPPublishPLIAndDelete(t *testing.T) {
	keys := fakeKeys{"sk_good": {Room: "stage", Name: "OBS WHIP", Identity: "obs"}}
	svc, dir, base, v := startWHIP(t, keys, nil)

	c := newWHIPClient(t)
	c.publish(base, "sk_good")
	testkit.Eventually(t, 15*time.Second, "viewer receives H.264 and Opus over WHIP", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 40 && v.ReceivedKind(webrtc.RTPCodecTypeAudio) >= 40
	})
	streams := svc.Streams()
	if len(streams) != 1 || streams[0].Protocol != "whip" || streams[0].Identity != "obs" {
		t.Fatalf("streams %+v", streams)
	}
	pid := streams[0].ParticipantID
	vt, _ := v.TrackOfKind(webrtc.RTPCodecTypeVideo)
	if !strings.HasPrefix(vt.StreamID, pid+"|") {
		t.Fatalf("stream id %q", vt.StreamID)
	}
	checkParamSetsBeforeIDR(t, vt.Packets)
	// WHIP uses the SFU's own UDP port, the one viewers connect to.
	pair, err := v.Sub.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("viewer's selected pair: %v", err)
	}
	if wp := candidatePorts(c.answer); len(wp) != 1 || wp[0] != strconv.Itoa(int(pair.Remote.Port)) {
		t.Fatalf("WHIP answer candidate ports %v, SFU port for viewers %d", wp, pair.Remote.Port)
	}
	if dir.count("track stage "+pid+" video video/H264 camera") != 1 || dir.count("track stage "+pid+" audio audio/opus microphone") != 1 {
		t.Fatalf("directory calls %v", dir.all())
	}

	// A viewer's key-frame request reaches the WHIP publisher.
	before := c.plis.Load()
	testkit.Eventually(t, 10*time.Second, "viewer PLI reaches the WHIP publisher", func() bool {
		if err := v.SendPLI(vt.SSRC); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		return c.plis.Load() > before
	})

	// The same key cannot publish twice at once.
	c2 := newWHIPClient(t)
	if resp, body := whipRequest(t, http.MethodPost, base+"/whip", "sk_good", "application/sdp", c2.offer()); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second POST: %d %s", resp.StatusCode, body)
	}

	// A wrong Bearer on DELETE is refused; the right one ends the stream.
	if resp, _ := whipRequest(t, http.MethodDelete, base+c.location, "sk_other", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("DELETE with another key: %d", resp.StatusCode)
	}
	if resp, body := whipRequest(t, http.MethodDelete, base+c.location, "sk_good", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	v.WaitTracksEnded(t, 2)
	testkit.Eventually(t, 5*time.Second, "participant leaves", func() bool { return dir.count("remove stage "+pid) == 1 })
	if resp, _ := whipRequest(t, http.MethodDelete, base+c.location, "sk_good", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE: %d", resp.StatusCode)
	}
	testkit.Eventually(t, 10*time.Second, "publisher connection closed", func() bool {
		s := c.pc.ConnectionState()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	})
}

func TestWHIPRefusals(t *testing.T) {
	keys := fakeKeys{"sk_good": {Room: "stage", Name: "OBS"}}
	_, dir, base, _ := startWHIP(t, keys, func(c *Config) { c.WHIP.MaxOfferBytes = 16 << 10 })
	c := newWHIPClient(t)
	offer := c.offer()

	cases := []struct {
		name, method, path, token, ctype, body string
		want                                   int
	}{
		{"wrong key", "POST", "/whip", "sk_bad", "application/sdp", offer, http.StatusUnauthorized},
		{"revoked key", "POST", "/whip", "revoked", "application/sdp", offer, http.StatusUnauthorized},
		{"no token", "POST", "/whip", "", "application/sdp", offer, http.StatusUnauthorized},
		{"not sdp", "POST", "/whip", "sk_good", "application/json", "{}", http.StatusUnsupportedMediaType},
		{"garbage sdp", "POST", "/whip", "sk_good", "application/sdp", "hello", http.StatusBadRequest},
		{"too large", "POST", "/whip", "sk_good", "application/sdp", offer + strings.Repeat("a=x\r\n", 4000), http.StatusRequestEntityTooLarge},
		{"GET endpoint", "GET", "/whip", "sk_good", "", "", http.StatusMethodNotAllowed},
		{"PATCH resource", "PATCH", "/whip/aaaaaaaaaaaaaaaaaaaaaaaaaa", "sk_good", "application/trickle-ice-sdpfrag", "", http.StatusMethodNotAllowed},
		{"DELETE unknown", "DELETE", "/whip/aaaaaaaaaaaaaaaaaaaaaaaaaa", "sk_good", "", "", http.StatusNotFound},
		{"bad resource", "DELETE", "/whip/../x", "sk_good", "", "", http.StatusNotFound},
		{"preflight", "OPTIONS", "/whip", "", "", "", http.StatusNoContent},
	}
	for _, tc := range cases {
		resp, body := whipRequest(t, tc.method, base+tc.path, tc.token, tc.ctype, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if tc.name == "preflight" {
			h := resp.Header
			if h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
				!strings.Contains(h.Get("Access-Control-Expose-Headers"), "Location") {
				t.Errorf("preflight headers %v", h)
			}
		}
	}
	if dir.count("add ") != 0 {
		t.Fatalf("a refused request joined the room: %v", dir.all())
	}
}

func TestWHIPRateLimit(t *testing.T) {
	_, _, base, _ := startWHIP(t, fakeKeys{}, func(c *Config) { c.WHIP.RequestsPerMinute = 8 }) // burst 2, then one per 60/7 s
	codes := map[int]int{}
	for range 5 {
		resp, _ := whipRequest(t, "POST", base+"/whip", "sk_bad", "application/sdp", "v=0\r\n")
		codes[resp.StatusCode]++
	}
	if codes[http.StatusTooManyRequests] != 3 || codes[http.StatusUnauthorized]+codes[http.StatusBadRequest] != 2 {
		t.Fatalf("status codes %v, want 2 answered then 3 x 429", codes)
	}
}

// candidatePorts lists the distinct UDP candidate ports in an SDP, sorted.
func candidatePorts(sdp string) []string {
	set := map[string]bool{}
	for line := range strings.Lines(sdp) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:"); ok {
			f := strings.Fields(rest)
			if len(f) > 5 && strings.EqualFold(f[2], "udp") {
				set[f[5]] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestWHIPConnectTimeout: a publisher that never connects (the answer is
// never applied) does not hold the stream slot.
func TestWHIPConnectTimeout(t *testing.T) {
	keys := fakeKeys{"sk_good": {Room: "stage", Name: "OBS"}}
	svc, dir, base, _ := startWHIP(t, keys, func(c *Config) { c.WHIP.ConnectTimeout = time.Second })
	c := newWHIPClient(t)
	resp, body := whipRequest(t, http.MethodPost, base+"/whip", "sk_good", "application/sdp", c.offer())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if len(svc.Streams()) != 1 {
		t.Fatal("no live stream after POST")
	}
	testkit.Eventually(t, 10*time.Second, "stream ended by the connect timeout", func() bool {
		return len(svc.Streams()) == 0 && dir.count("remove stage ") == 1
	})
	if resp, _ := whipRequest(t, http.MethodDelete, base+resp.Header.Get("Location"), "", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE after timeout: %d", resp.StatusCode)
	}
}
