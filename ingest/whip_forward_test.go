package ingest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/rtmp"
	"github.com/parleyhq/parley/sfu"
)

// fakePlacer is a RoomPlacer whose answer the test sets: "" (the room is
// here), another node's URL, or an error (Redis away).
type fakePlacer struct {
	id    string
	mu    sync.Mutex
	host  string
	err   error
	calls int
}

func (p *fakePlacer) PlaceRoom(context.Context, string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.host, p.err
}

func (p *fakePlacer) NodeID() string { return p.id }

func (p *fakePlacer) set(host string, err error) {
	p.mu.Lock()
	p.host, p.err = host, err
	p.mu.Unlock()
}

func (p *fakePlacer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// whipNode is one cluster node as far as WHIP goes: an SFU, a Service
// with a fakePlacer, and an HTTP server that records the headers of the
// POSTs it receives.
type whipNode struct {
	sfu   *sfu.SFU
	svc   *Service
	dir   *fakeDir
	place *fakePlacer
	url   string

	mu    sync.Mutex
	posts []http.Header
}

func startWHIPNode(t *testing.T, id string, keys rtmp.KeyStore) *whipNode {
	t.Helper()
	n := &whipNode{sfu: startSFU(t), dir: &fakeDir{}, place: &fakePlacer{id: id}}
	cfg := DefaultConfig()
	cfg.ReconnectGrace = 0
	cfg.WHIP.RequestsPerMinute = 0 // every request here comes from 127.0.0.1
	n.svc, _ = startService(t, cfg, Deps{Media: n.sfu, Keys: keys, Directory: n.dir, Placer: n.place})
	mux := http.NewServeMux()
	mux.Handle(cfg.WHIP.Path, n.svc.WHIPHandler())
	mux.Handle(cfg.WHIP.Path+"/", n.svc.WHIPHandler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n.mu.Lock()
			n.posts = append(n.posts, r.Header.Clone())
			n.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	n.url = srv.URL
	return n
}

func (n *whipNode) received() []http.Header {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]http.Header(nil), n.posts...)
}

// TestWHIPForwardedToHostingNode: an encoder POSTs to a node that does
// not host the stream's room; the stream lives on the hosting node, the
// media flows straight there, Location names that node, and DELETE on it
// ends the stream.
func TestWHIPForwardedToHostingNode(t *testing.T) {
	keys := fakeKeys{"sk_good": {Room: "stage", Name: "OBS WHIP", Identity: "obs", KeyID: "IK_1"}}
	front := startWHIPNode(t, "node-front", keys)
	host := startWHIPNode(t, "node-host", keys)
	front.place.set(host.url, nil) // the room lives on host; host's placer says "here"
	v := newViewer(t, host.sfu, "stage", "PA_viewer")

	c := newWHIPClient(t)
	c.publishAt(front.url+"/whip", "sk_good", host.url+"/whip/")
	testkit.Eventually(t, 15*time.Second, "a viewer on the hosting node receives H.264 and Opus", func() bool {
		return v.ReceivedKind(webrtc.RTPCodecTypeVideo) >= 40 && v.ReceivedKind(webrtc.RTPCodecTypeAudio) >= 40
	})
	streams := host.svc.Streams()
	if len(streams) != 1 || streams[0].Protocol != "whip" || streams[0].Identity != "obs" {
		t.Fatalf("hosting node's streams %+v", streams)
	}
	if s := front.svc.Streams(); len(s) != 0 || len(front.dir.all()) != 0 {
		t.Fatalf("the front node has streams %+v, directory calls %v", s, front.dir.all())
	}
	// The answer is the hosting node's: its candidates are the port the
	// hosting SFU's viewers use.
	pair, err := v.Sub.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("viewer's selected pair: %v", err)
	}
	if wp := candidatePorts(c.answer); len(wp) != 1 || wp[0] != strconv.Itoa(int(pair.Remote.Port)) {
		t.Fatalf("answer candidate ports %v, hosting SFU's port %d", wp, pair.Remote.Port)
	}
	// What the hosting node received: the encoder's key, marked as
	// forwarded by the front node, with the encoder's address.
	posts := host.received()
	if len(posts) != 1 {
		t.Fatalf("hosting node received %d POSTs", len(posts))
	}
	if h := posts[0]; h.Get("Authorization") != "Bearer sk_good" || h.Get(whipForwardedBy) != "node-front" ||
		h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("Content-Type") != "application/sdp" {
		t.Fatalf("forwarded request headers %v", h)
	}

	// A second publish through the front gets the hosting node's 409.
	c2 := newWHIPClient(t)
	if resp, body := whipRequest(t, http.MethodPost, front.url+"/whip", "sk_good", "application/sdp", c2.offer()); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second POST through the front: %d %s", resp.StatusCode, body)
	}

	// DELETE goes straight to the hosting node.
	if resp, body := whipRequest(t, http.MethodDelete, c.location, "sk_good", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", c.location, resp.StatusCode, body)
	}
	testkit.Eventually(t, 5*time.Second, "the stream ends on the hosting node", func() bool {
		return len(host.svc.Streams()) == 0 && host.dir.count("remove stage ") == 1
	})
	v.WaitTracksEnded(t, 2)
	if n := len(front.received()); n != 2 {
		t.Fatalf("the front node received %d POSTs, want 2", n)
	}
}

// TestWHIPForwardRefusals: placement failing, a forwarded request whose
// room has moved on, an unreachable hosting node, and refusals the front
// node makes itself before asking where the room is.
func TestWHIPForwardRefusals(t *testing.T) {
	keys := fakeKeys{"sk_good": {Room: "stage", Name: "OBS", KeyID: "IK_1"}}
	node := startWHIPNode(t, "node-a", keys)
	var elsewhereHits atomic.Int64
	var elsewhereGot atomic.Value // "path body" of the last request
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
		b, _ := io.ReadAll(r.Body)
		elsewhereGot.Store(r.URL.Path + " " + string(b))
		w.Header().Set("Location", "/whip/res1")
		w.Header().Set("ETag", `"e1"`)
		w.Header().Add("Link", `<stun:stun.example>; rel="ice-server"`)
		w.Header().Add("Link", `<turn:turn.example>; rel="ice-server"`)
		w.Header().Set("X-Private", "not for the encoder")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "answer")
	}))
	t.Cleanup(elsewhere.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	offer := newWHIPClient(t).offer()

	post := func(name, key, body string, header map[string]string) (*http.Response, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, node.url+"/whip", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/sdp")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		return resp, string(b)
	}
	wantRetry := func(name string, resp *http.Response, body string, code int) {
		t.Helper()
		if resp.StatusCode != code || (code == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "") {
			t.Errorf("%s: %d (Retry-After %q) %q, want %d", name, resp.StatusCode, resp.Header.Get("Retry-After"), body, code)
		}
	}

	// Refused on this node before placement is asked.
	if resp, body := post("unknown key", "sk_bad", offer, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown key: %d %q", resp.StatusCode, body)
	}
	if resp, body := post("too large", "sk_good", offer+strings.Repeat("a=x\r\n", 20000), nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d %q", resp.StatusCode, body)
	}
	if n := node.place.count(); n != 0 {
		t.Errorf("placement asked %d times for refused requests", n)
	}

	node.place.set("", errors.New("redis: connection refused"))
	resp, body := post("placement error", "sk_good", offer, nil)
	wantRetry("placement error", resp, body, http.StatusServiceUnavailable)
	if !strings.Contains(body, "cluster") {
		t.Errorf("placement error message %q does not say what failed", body)
	}

	// A request another node passed on is never passed on again.
	node.place.set(elsewhere.URL, nil)
	resp, body = post("forwarded, room elsewhere", "sk_good", offer, map[string]string{whipForwardedBy: "node-b"})
	wantRetry("forwarded, room elsewhere", resp, body, http.StatusServiceUnavailable)
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("a forwarded request was forwarded again (%d requests)", n)
	}

	// The hosting node does not answer.
	node.place.set(dead.URL, nil)
	resp, body = post("hosting node down", "sk_good", offer, nil)
	wantRetry("hosting node down", resp, body, http.StatusBadGateway)
	node.place.set("ftp://example.invalid", nil)
	resp, body = post("bad node URL", "sk_good", offer, nil)
	wantRetry("bad node URL", resp, body, http.StatusBadGateway)

	// Another node's answer, whatever it is, reaches the encoder, with an
	// absolute Location on that node and its WHIP headers only.
	node.place.set(elsewhere.URL, nil)
	resp, body = post("answered elsewhere", "sk_good", offer, nil)
	if resp.StatusCode != http.StatusTeapot || body != "answer" || elsewhereHits.Load() != 1 {
		t.Errorf("answered elsewhere: %d %q, %d hits", resp.StatusCode, body, elsewhereHits.Load())
	}
	if got, _ := elsewhereGot.Load().(string); got != "/whip "+offer {
		t.Errorf("the other node received %.40q, want the path and the offer", got)
	}
	h := resp.Header
	if h.Get("Location") != elsewhere.URL+"/whip/res1" || h.Get("ETag") != `"e1"` || len(h.Values("Link")) != 2 || h.Get("X-Private") != "" {
		t.Errorf("relayed headers %v", h)
	}

	if s := node.svc.Streams(); len(s) != 0 || node.dir.count("add ") != 0 {
		t.Fatalf("a refused or forwarded request joined a room here: %+v %v", s, node.dir.all())
	}
}
