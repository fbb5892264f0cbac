package whipout

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sfu/sfutest"
)

var (
	h264 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	opus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
)

func loopbackPC(t *testing.T) func() (*webrtc.PeerConnection, error) {
	api, _ := sfutest.NewAPI(t, sfutest.Options{NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}})
	return func() (*webrtc.PeerConnection, error) { return api.NewPeerConnection(webrtc.Configuration{}) }
}

// answerer is a WHIP endpoint on a pion answerer: it counts the packets
// of each received track and sends a PLI for the video track on request.
type answerer struct {
	t      *testing.T
	newPC  func() (*webrtc.PeerConnection, error)
	status int // non-zero: refuse every POST with it

	mu      sync.Mutex
	pc      *webrtc.PeerConnection
	auth    []string // Authorization of each request, in order
	deletes []string // paths DELETEd
	videoPT webrtc.PayloadType

	video, audio atomic.Int64
	pli          chan struct{}
	wg           sync.WaitGroup
}

func newAnswerer(t *testing.T) (*answerer, *httptest.Server) {
	a := &answerer{t: t, newPC: loopbackPC(t), pli: make(chan struct{}, 1)}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		a.mu.Lock()
		pc := a.pc
		a.mu.Unlock()
		if pc != nil {
			_ = pc.Close()
		}
		a.wg.Wait()
	})
	return a, srv
}

func (a *answerer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	a.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/live/whip":
		a.create(w, r)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/live/res/"):
		a.mu.Lock()
		a.deletes = append(a.deletes, r.URL.Path)
		pc := a.pc
		a.mu.Unlock()
		if pc != nil {
			_ = pc.Close()
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

func (a *answerer) create(w http.ResponseWriter, r *http.Request) {
	if a.status != 0 {
		http.Error(w, "stream refused\nsecond line", a.status)
		return
	}
	if r.Header.Get("Content-Type") != "application/sdp" {
		http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(body), "a=candidate:") || strings.Contains(string(body), "a=recvonly") {
		http.Error(w, "offer without candidates or not send-only", http.StatusBadRequest)
		return
	}
	pc, err := a.newPC()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	a.pc = pc
	a.mu.Unlock()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := &a.audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &a.video
			a.mu.Lock()
			a.videoPT = tr.PayloadType()
			a.mu.Unlock()
			a.wg.Go(func() {
				for range a.pli {
					_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
				}
			})
		}
		a.wg.Go(func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				n.Add(1)
			}
		})
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		http.Error(w, "gathering", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Location", "res/1") // relative to the endpoint URL
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, srv *httptest.Server, o Options) (*Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.Endpoint == "" {
		o.Endpoint = srv.URL + "/live/whip"
	}
	if o.Token == "" {
		o.Token = "sk_secret"
	}
	if o.NewPeerConnection == nil {
		o.NewPeerConnection = loopbackPC(t)
	}
	return Dial(ctx, o)
}

func TestPublishesAndDeletes(t *testing.T) {
	a, srv := newAnswerer(t)
	var keyframes atomic.Int64
	s, err := dial(t, srv, Options{Video: &h264, Audio: &opus, OnKeyframeRequest: func() { keyframes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.URL + "/live/res/1"; s.Resource() != want {
		t.Fatalf("resource %q, want %q (Location resolved against the endpoint)", s.Resource(), want)
	}
	for i := range 200 {
		// Payload type and SSRC as rtmp writes them: the track rewrites both.
		if err := s.WriteVideo(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1,
			SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), Marker: true}, Payload: []byte{0x65, 0x88, 1, 2}}); err != nil {
			t.Fatalf("WriteVideo: %v", err)
		}
		if err := s.WriteAudio(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 2,
			SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: []byte{0xfc, 1, 2}}); err != nil {
			t.Fatalf("WriteAudio: %v", err)
		}
		if a.video.Load() > 20 && a.audio.Load() > 20 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "video and audio at the answerer", func() bool { return a.video.Load() > 0 && a.audio.Load() > 0 })
	a.mu.Lock()
	pt := a.videoPT
	a.mu.Unlock()
	if pt == 96 {
		t.Fatalf("video arrived with rtmp's payload type 96, not the negotiated one")
	}

	a.pli <- struct{}{}
	waitFor(t, "the PLI at the callback", func() bool { return keyframes.Load() > 0 })

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	close(a.pli)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.deletes) != 1 || a.deletes[0] != "/live/res/1" {
		t.Fatalf("DELETEs %v, want one of /live/res/1", a.deletes)
	}
	for _, h := range a.auth {
		if h != "Bearer sk_secret" {
			t.Fatalf("Authorization %q, want the Bearer token on every request", h)
		}
	}
	if err := s.WriteVideo(&rtp.Packet{Header: rtp.Header{Version: 2}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
}

func TestRefusalIsAStatusError(t *testing.T) {
	a, srv := newAnswerer(t)
	a.status = http.StatusConflict
	_, err := dial(t, srv, Options{Video: &h264})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || se.Message != "stream refused" {
		t.Fatalf("err %v, want a 409 StatusError with the body's first line", err)
	}
	if strings.Contains(err.Error(), "sk_secret") {
		t.Fatalf("error %q contains the token", err)
	}
	close(a.pli)
}

func TestRemoteCloseFailsWrites(t *testing.T) {
	a, srv := newAnswerer(t)
	s, err := dial(t, srv, Options{Video: &h264, DisconnectedGrace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	close(a.pli)
	a.mu.Lock()
	pc := a.pc
	a.mu.Unlock()
	_ = pc.Close() // the hosting node ends the session without a word
	select {
	case <-s.Failed():
	case <-time.After(15 * time.Second): // pion: disconnected after 5 s, then the grace
		t.Fatal("the session did not notice the remote close")
	}
	if err := s.WriteVideo(&rtp.Packet{Header: rtp.Header{Version: 2}}); !errors.Is(err, ErrConnectionFailed) {
		t.Fatalf("write after the remote closed: %v, want ErrConnectionFailed", err)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/whip"
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, Options{Endpoint: url, Token: "sk_secret", NewPeerConnection: loopbackPC(t), Audio: &opus})
	if err == nil || strings.Contains(err.Error(), "sk_secret") {
		t.Fatalf("err %v, want a connection error without the token", err)
	}
}
