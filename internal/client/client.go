// Package client is a Go participant of Parley's signaling protocol
// (docs/protocol.md) with pion PeerConnections. The load tool and the
// server's end-to-end tests use it to act as a participant without a
// browser. Its signaling connection is internal/wire's, shared with the
// chat load client.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/repairedrid"
	"github.com/parleyhq/parley/internal/wire"
	"github.com/parleyhq/parley/signaling/proto"
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
	// OnEvent sees every server message that is not a reply or a ping
	// (for tests that wait on participant_joined and the like).
	OnEvent func(msgType string, data json.RawMessage)
	// API builds the PeerConnections; nil uses LoopbackAPI.
	API *webrtc.API
}

// ServerError is an `error` message from the server.
type ServerError = wire.ServerError

// Client is one participant: a signaling connection (internal/wire) and
// two PeerConnections.
type Client struct {
	opts Options
	pub  *webrtc.PeerConnection
	sub  *webrtc.PeerConnection
	// Joined is the server's answer to join.
	Joined proto.JoinedBody

	// conn is set by the first message the connection hands over (the
	// join reply at the latest), before any local description exists, so
	// every ICE candidate callback finds it.
	conn atomic.Pointer[wire.Conn]
}

// LoopbackAPI returns a pion API that gathers only loopback host
// candidates over UDP, for clients running on the same machine as the
// server. It registers pion's default interceptors (NACK, RTCP reports,
// TWCC) so the client recovers losses as a browser would.
func LoopbackAPI() *webrtc.API {
	return LoopbackAPIOver(webrtc.NetworkTypeUDP4)
}

// LoopbackAPIOver is LoopbackAPI on the given network types: with
// NetworkTypeTCP4 alone the client gathers no UDP candidate and dials the
// server's passive ICE-TCP candidate, as a browser behind a UDP-blocking
// firewall would.
func LoopbackAPIOver(networks ...webrtc.NetworkType) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		panic(err) // static codec table; cannot fail
	}
	ir := &interceptor.Registry{}
	ir.Add(repairedrid.Factory{}) // first: below the NACK responder
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		panic(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes(networks)
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
	c := &Client{opts: opts}
	if err := c.setupPeers(); err != nil {
		return nil, err
	}
	conn, err := wire.Dial(ctx, wire.Options{URL: opts.URL, Origin: opts.Origin, Token: opts.Token,
		Intercept: c.intercept, OnPush: c.onPush})
	if err != nil {
		_ = c.pub.Close()
		_ = c.sub.Close()
		return nil, err
	}
	c.conn.Store(conn)
	c.Joined = conn.Joined
	return c, nil
}

func (c *Client) setupPeers() error {
	var err error
	if c.pub, err = c.opts.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return fmt.Errorf("publisher connection: %w", err)
	}
	if c.sub, err = c.opts.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		_ = c.pub.Close()
		return fmt.Errorf("subscriber connection: %w", err)
	}
	for target, pc := range map[string]*webrtc.PeerConnection{"publisher": c.pub, "subscriber": c.sub} {
		pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
			if cand == nil {
				return
			}
			init := cand.ToJSON()
			if conn := c.conn.Load(); conn != nil {
				_ = conn.Notify(proto.TypeCandidate, proto.CandidateBody{Target: target, Candidate: &proto.CandidateInit{
					Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment,
				}})
			}
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
	layers := make([][]webrtc.TrackLocal, len(tracks))
	for i, t := range tracks {
		layers[i] = []webrtc.TrackLocal{t}
	}
	senders, err := c.addTracks(layers)
	if err != nil {
		return err
	}
	for _, s := range senders {
		go drainRTCP(s)
	}
	return c.announce(ctx, layers, sources)
}

// PublishLayers is Publish for tracks that may have several simulcast
// encodings, as a browser's sendEncodings: layers[i][0] is added as the
// track, the rest as further encodings of its sender (each a
// TrackLocalStaticRTP with its own rid, same track id). The caller reads
// the returned senders' RTCP (per rid for simulcast), so key frame
// requests reach the layer they name.
func (c *Client) PublishLayers(ctx context.Context, layers [][]webrtc.TrackLocal, sources []string) ([]*webrtc.RTPSender, error) {
	senders, err := c.addTracks(layers)
	if err != nil {
		return nil, err
	}
	return senders, c.announce(ctx, layers, sources)
}

func (c *Client) addTracks(layers [][]webrtc.TrackLocal) ([]*webrtc.RTPSender, error) {
	senders := make([]*webrtc.RTPSender, len(layers))
	for i, ls := range layers {
		sender, err := c.pub.AddTrack(ls[0])
		if err != nil {
			return nil, fmt.Errorf("add track: %w", err)
		}
		for _, l := range ls[1:] {
			if err := sender.AddEncoding(l); err != nil {
				return nil, fmt.Errorf("add encoding: %w", err)
			}
		}
		senders[i] = sender
	}
	return senders, nil
}

func (c *Client) announce(ctx context.Context, layers [][]webrtc.TrackLocal, sources []string) error {
	metas := make([]proto.TrackAnnouncement, len(layers))
	for i, ls := range layers {
		metas[i] = proto.TrackAnnouncement{TrackID: ls[0].ID(), Kind: ls[0].Kind().String(), Source: sources[i]}
	}
	if err := c.conn.Load().Request(ctx, proto.TypePublish, proto.PublishBody{Tracks: metas}, nil); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return c.negotiatePublisher(ctx)
}

// Notify sends a message that has no reply, such as video_view.
func (c *Client) Notify(typ string, body any) error { return c.conn.Load().Notify(typ, body) }

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
	// The answer is applied by intercept, in arrival order.
	if err := c.conn.Load().Request(ctx, proto.TypeOffer, proto.SDPBody{SDP: offer.SDP}, nil); err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	return nil
}

// Publisher and Subscriber expose the PeerConnections for statistics.
func (c *Client) Publisher() *webrtc.PeerConnection  { return c.pub }
func (c *Client) Subscriber() *webrtc.PeerConnection { return c.sub }

// Done is closed when the WebSocket ends.
func (c *Client) Done() <-chan struct{} { return c.conn.Load().Done() }

// Close leaves and releases everything.
func (c *Client) Close() error {
	conn := c.conn.Load()
	_ = conn.Notify(proto.TypeLeave, nil)
	err := conn.Close()
	_ = c.pub.Close()
	_ = c.sub.Close()
	return err
}

// intercept applies the publisher's answer on the reader goroutine, in
// arrival order, so the publisher candidates that follow it never reach
// a connection that lacks its remote description; a failure becomes the
// error reply to the offer.
func (c *Client) intercept(conn *wire.Conn, env *proto.Envelope) {
	c.conn.CompareAndSwap(nil, conn)
	if env.Type != proto.TypeAnswer {
		return
	}
	var a proto.SDPBody
	err := json.Unmarshal(env.Data, &a)
	if err == nil {
		err = c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP})
	}
	if err != nil {
		data, _ := json.Marshal(proto.ErrorBody{Code: "client", Message: "publisher answer: " + err.Error()})
		*env = proto.Envelope{Type: proto.TypeError, Re: env.Re, Data: data}
	}
}

// onPush handles what the server sends unasked: subscriber offers and
// candidates.
func (c *Client) onPush(conn *wire.Conn, typ string, data json.RawMessage) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(typ, data)
	}
	if err := c.handle(conn, typ, data); err != nil {
		c.opts.Logger.Warn("client: handling server message", "type", typ, "error", err)
	}
}

func (c *Client) handle(conn *wire.Conn, typ string, data json.RawMessage) error {
	switch typ {
	case proto.TypeOffer:
		var o proto.SDPBody
		if err := json.Unmarshal(data, &o); err != nil {
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
		return conn.Notify(proto.TypeAnswer, proto.SDPBody{SDP: ans.SDP})
	case proto.TypeCandidate:
		var cd proto.CandidateBody
		if err := json.Unmarshal(data, &cd); err != nil {
			return err
		}
		if cd.Candidate == nil {
			return errors.New("candidate without candidate")
		}
		init := webrtc.ICECandidateInit{Candidate: cd.Candidate.Candidate, SDPMid: cd.Candidate.SDPMid,
			SDPMLineIndex: cd.Candidate.SDPMLineIndex, UsernameFragment: cd.Candidate.UsernameFragment}
		if cd.Target == "subscriber" {
			return c.sub.AddICECandidate(init)
		}
		return c.pub.AddICECandidate(init)
	}
	return nil
}
