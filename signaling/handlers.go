package signaling

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

func (c *conn) handleJoin(reqID string, body *proto.JoinBody) {
	s := c.s
	claims, err := s.keys.Verify(body.Token)
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, auth.ErrExpired) {
			msg = "token expired"
		}
		c.log.Info("join refused", "reason", msg)
		c.fail(reqID, &proto.Error{Code: proto.CodeUnauthorized, Message: msg}, websocket.ClosePolicyViolation)
		return
	}
	if body.Protocol != proto.ProtocolVersion {
		c.fail(reqID, &proto.Error{Code: proto.CodeProtocolVersion, Message: "this server speaks protocol 1"}, websocket.ClosePolicyViolation)
		return
	}
	if claims.Room == "" {
		c.handleIMJoin(reqID, claims, body)
		return
	}
	if claims.Room == auth.AllRooms || !validRoomName(claims.Room) {
		c.fail(reqID, &proto.Error{Code: proto.CodeUnauthorized, Message: "token does not name a joinable room"}, websocket.ClosePolicyViolation)
		return
	}
	if !s.roomHasSpace(claims.Room, claims.Identity) {
		c.fail(reqID, &proto.Error{Code: proto.CodeRoomFull, Message: "room is full"}, websocket.ClosePolicyViolation)
		return
	}
	if s.chat != nil && s.hub.sessionCount(claims.Identity) >= s.cfg.MaxSessionsPerIdentity {
		c.fail(reqID, &proto.Error{Code: proto.CodeTooManySessions, Message: "this identity has too many open sessions"}, websocket.ClosePolicyViolation)
		return
	}
	name := displayNameFor(claims, body.Name)
	p := &participant{
		sid:      ids.New("PA_"),
		identity: claims.Identity,
		name:     name,
		room:     claims.Room,
		grants:   claims.Grants,
		joinedAt: time.Now(),
		conn:     c,
		tracks:   map[string]*track{},
	}
	p.log = c.log.With("room", p.room, "participant", p.sid, "identity", p.identity)
	peer, err := s.media.Join(p.room, p.sid, sfu.JoinOptions{
		Events:       peerEvents{c: c},
		CanPublish:   claims.Grants.Publish,
		CanSubscribe: claims.Grants.Subscribe,
		Logger:       p.log,
	})
	if err != nil {
		p.log.Error("media join failed", "err", err)
		c.fail(reqID, &proto.Error{Code: proto.CodeInternal, Message: "media session could not be created"}, websocket.CloseInternalServerErr)
		return
	}
	p.peer = peer
	var ice []proto.ICEServerView
	if s.ice != nil {
		ice = iceServerViews(s.ice.ICEServers(p.identity))
	} else {
		ice = []proto.ICEServerView{}
	}
	c.part, c.claims, c.name, c.sid = p, claims, name, p.sid
	p.chatConv = c.joinRoomChat(p)
	if perr := s.addParticipant(p, reqID, ice); perr != nil {
		c.part = nil
		_ = peer.Close()
		c.fail(reqID, perr, websocket.ClosePolicyViolation)
		return
	}
	// "joined" is already queued (addParticipant); the cap was checked
	// before the media session was made. Requests are handled one at a
	// time per connection, so the chat_sync a client sends after joined
	// runs after this registration: what was stored before it is in the
	// sync, what is stored after it is pushed.
	c.enterIM(0, nil)
	c.afterIMJoined()
	c.joined.Store(true)
	c.extendReadDeadline(s.cfg.PingTimeout)
	c.markReady()
	p.log.Info("joined")
}

// cleanName trims a display name and drops control characters.
func cleanName(n string) string {
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(n))
	if utf8.RuneCountInString(n) > proto.MaxNameRunes {
		n = string([]rune(n)[:proto.MaxNameRunes])
	}
	return n
}

func (c *conn) handlePublish(reqID string, p *participant, body *proto.PublishBody) *proto.Error {
	if perr := c.s.announce(p, body.Tracks); perr != nil {
		return perr
	}
	c.enqueue(proto.Encode(proto.TypePublished, reqID, body))
	return nil
}

func (c *conn) handleUnpublish(p *participant, body *proto.TrackRef) *proto.Error {
	sid, ok := c.s.forgetTrack(p, body.TrackID)
	if !ok {
		return &proto.Error{Code: proto.CodeNotFound, Message: "unknown trackId"}
	}
	if sid != "" {
		if err := p.peer.Unpublish(sid); err != nil {
			// The track may already be gone in the SFU; our state is updated.
			p.log.Debug("unpublish", "track", sid, "err", err)
		}
	}
	return nil
}

func (c *conn) handleOffer(reqID string, p *participant, body *proto.SDPBody) *proto.Error {
	answer, err := p.peer.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: body.SDP})
	if err != nil {
		p.log.Info("publisher offer failed", "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "publisher offer rejected"}
	}
	c.enqueue(proto.Encode(proto.TypeAnswer, reqID, proto.SDPBody{SDP: answer.SDP}))
	return nil
}

func (c *conn) handleCandidate(p *participant, body *proto.CandidateBody) *proto.Error {
	target := sfu.Publisher
	if body.Target == "subscriber" {
		target = sfu.Subscriber
	}
	if target == sfu.Publisher && !p.grants.Publish {
		return &proto.Error{Code: proto.CodeForbidden, Message: "token has no publish grant"}
	}
	ci := webrtc.ICECandidateInit{
		Candidate:        body.Candidate.Candidate,
		SDPMid:           body.Candidate.SDPMid,
		SDPMLineIndex:    body.Candidate.SDPMLineIndex,
		UsernameFragment: body.Candidate.UsernameFragment,
	}
	if err := p.peer.AddICECandidate(target, ci); err != nil {
		p.log.Debug("add ICE candidate", "target", body.Target, "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "candidate rejected"}
	}
	return nil
}

func (c *conn) handleMute(p *participant, body *proto.MuteBody) *proto.Error {
	sid, ok := c.s.setMuted(p, body.TrackID, *body.Muted)
	if !ok {
		return &proto.Error{Code: proto.CodeNotFound, Message: "unknown trackId"}
	}
	if sid != "" {
		// Stop forwarding a muted track instead of relaying black frames
		// or silence to every subscriber.
		if err := p.peer.SetTrackMuted(sid, *body.Muted); err != nil {
			p.log.Debug("set track muted", "track", sid, "err", err)
		}
	}
	return nil
}
