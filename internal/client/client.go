package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Options configures a participant.
type Options struct {
	URL    string // ws://host:port/ws
	Origin string // sent as the Origin header, as a browser would
	Token  string
	Logger *slog.Logger
	// OnTrack is called for every remote track on the subscriber
	// connection with the participant and track sids parsed from the
	// stream id.
	OnTrack func(participantSID, trackSID string, t *webrtc.TrackRemote, r *webrtc.RTPReceiver)
	// OnEvent sees every server message type (for tests that wait on
	// participant_joined and the like).
	OnEvent func(msgType string, data json.RawMessage)
	// API builds the PeerConnections; nil uses LoopbackAPI.
	API *webrtc.API
}

// ServerError is an `error` message from the server.
type ServerError struct{ Code, Message string }

func (e *ServerError) Error() string { return e.Code + ": " + e.Message }

// Client is one participant: a WebSocket and two PeerConnections.
type Client struct {
	opts   Options
	ws     *websocket.Conn
	pub    *webrtc.PeerConnection
	sub    *webrtc.PeerConnection
	Joined Joined

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  int
	waiters map[string]chan envelope
	done    chan struct{}
	readErr error
}

// LoopbackAPI returns a pion API that gathers only loopback host
// candidates, for clients running on the same machine as the server. It
// registers pion's default interceptors (NACK, RTCP reports, TWCC) so the
// client recovers losses as a browser would.
func LoopbackAPI() *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		panic(err) // static codec table; cannot fail
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		panic(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// Dial connects, joins and sets up both PeerConnections. The publisher
// connection stays idle until Publish.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.API == nil {
		opts.API = LoopbackAPI()
	}
	h := http.Header{}
	if opts.Origin != "" {
		h.Set("Origin", opts.Origin)
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, opts.URL, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", opts.URL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", opts.URL, err)
	}
	c := &Client{opts: opts, ws: ws, waiters: map[string]chan envelope{}, done: make(chan struct{})}
	if err := c.setupPeers(); err != nil {
		ws.Close()
		return nil, err
	}
	go c.readLoop()
	reply, err := c.request(ctx, "join", joinData{Token: opts.Token, Protocol: 1})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("join: %w", err)
	}
	if err := json.Unmarshal(reply.Data, &c.Joined); err != nil {
		c.Close()
		return nil, fmt.Errorf("join reply: %w", err)
	}
	return c, nil
}

func (c *Client) setupPeers() error {
	var err error
	if c.pub, err = c.opts.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return fmt.Errorf("publisher connection: %w", err)
	}
	if c.sub, err = c.opts.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		c.pub.Close()
		return fmt.Errorf("subscriber connection: %w", err)
	}
	for target, pc := range map[string]*webrtc.PeerConnection{"publisher": c.pub, "subscriber": c.sub} {
		pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
			if cand == nil {
				return
			}
			raw, _ := json.Marshal(cand.ToJSON())
			_ = c.send("candidate", "", candidateData{Target: target, Candidate: raw})
		})
	}
	c.sub.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		psid, tsid, _ := strings.Cut(t.StreamID(), "|")
		if c.opts.OnTrack != nil {
			c.opts.OnTrack(psid, tsid, t, r)
			return
		}
		go drain(t)
	})
	return nil
}

func drain(t *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
	}
}

// Publish adds tracks to the publisher connection, announces them and
// negotiates.
func (c *Client) Publish(ctx context.Context, tracks []webrtc.TrackLocal, sources []string) error {
	metas := make([]TrackMeta, len(tracks))
	for i, t := range tracks {
		sender, err := c.pub.AddTrack(t)
		if err != nil {
			return fmt.Errorf("add track: %w", err)
		}
		go drainRTCP(sender)
		metas[i] = TrackMeta{TrackID: t.ID(), Kind: t.Kind().String(), Source: sources[i]}
	}
	if _, err := c.request(ctx, "publish", map[string]any{"tracks": metas}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return c.negotiatePublisher(ctx)
}

func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

func (c *Client) negotiatePublisher(ctx context.Context) error {
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set local offer: %w", err)
	}
	reply, err := c.request(ctx, "offer", sdpData{SDP: offer.SDP})
	if err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	if reply.Type != "answer" {
		return fmt.Errorf("offer: server replied %q, want answer", reply.Type)
	}
	return nil
}

func mustJSON(v any) json.RawMessage {
	raw, _ := json.Marshal(v)
	return raw
}

// Publisher and Subscriber expose the PeerConnections for statistics.
func (c *Client) Publisher() *webrtc.PeerConnection  { return c.pub }
func (c *Client) Subscriber() *webrtc.PeerConnection { return c.sub }

// Done is closed when the WebSocket ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close leaves and releases everything.
func (c *Client) Close() error {
	_ = c.send("leave", "", nil)
	err := c.ws.Close()
	c.pub.Close()
	c.sub.Close()
	<-c.done
	return err
}

func (c *Client) send(typ, id string, data any) error {
	env := envelope{Type: typ, ID: id}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return err
		}
		env.Data = raw
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(env)
}

func (c *Client) request(ctx context.Context, typ string, data any) (envelope, error) {
	c.mu.Lock()
	c.nextID++
	id := strconv.Itoa(c.nextID)
	ch := make(chan envelope, 1)
	c.waiters[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
	}()
	if err := c.send(typ, id, data); err != nil {
		return envelope{}, err
	}
	select {
	case env := <-ch:
		if env.Type == "error" {
			var e errorData
			_ = json.Unmarshal(env.Data, &e)
			return env, &ServerError{Code: e.Code, Message: e.Message}
		}
		return env, nil
	case <-c.done:
		if c.readErr != nil {
			return envelope{}, c.readErr
		}
		return envelope{}, errors.New("connection closed")
	case <-ctx.Done():
		return envelope{}, ctx.Err()
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		var env envelope
		if err := c.ws.ReadJSON(&env); err != nil {
			c.readErr = err
			return
		}
		if env.Type == "answer" {
			// Applied here, in arrival order, so the publisher candidates
			// that follow the answer never reach a connection that lacks
			// its remote description.
			var a sdpData
			err := json.Unmarshal(env.Data, &a)
			if err == nil {
				err = c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP})
			}
			if err != nil {
				env = envelope{Type: "error", Re: env.Re, Data: mustJSON(errorData{Code: "client", Message: "publisher answer: " + err.Error()})}
			}
		}
		if env.Re != "" {
			c.mu.Lock()
			ch := c.waiters[env.Re]
			c.mu.Unlock()
			if ch != nil {
				ch <- env
				continue
			}
		}
		if c.opts.OnEvent != nil {
			c.opts.OnEvent(env.Type, env.Data)
		}
		if err := c.handle(env); err != nil {
			c.opts.Logger.Warn("client: handling server message", "type", env.Type, "error", err)
		}
	}
}

func (c *Client) handle(env envelope) error {
	switch env.Type {
	case "ping":
		var p pingData
		_ = json.Unmarshal(env.Data, &p)
		return c.send("pong", "", p)
	case "offer":
		var o sdpData
		if err := json.Unmarshal(env.Data, &o); err != nil {
			return err
		}
		if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.SDP}); err != nil {
			return fmt.Errorf("subscriber offer: %w", err)
		}
		ans, err := c.sub.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := c.sub.SetLocalDescription(ans); err != nil {
			return err
		}
		return c.send("answer", "", sdpData{SDP: ans.SDP})
	case "candidate":
		var cd candidateData
		if err := json.Unmarshal(env.Data, &cd); err != nil {
			return err
		}
		var init webrtc.ICECandidateInit
		if err := json.Unmarshal(cd.Candidate, &init); err != nil {
			return err
		}
		if cd.Target == "subscriber" {
			return c.sub.AddICECandidate(init)
		}
		return c.pub.AddICECandidate(init)
	}
	return nil
}
