package signaling

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/rooms"
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
	if claims.Room == auth.AllRooms || !rooms.ValidName(claims.Room) {
		c.fail(reqID, &proto.Error{Code: proto.CodeUnauthorized, Message: "token does not name a joinable room"}, websocket.ClosePolicyViolation)
		return
	}
	if !s.dir.HasSpace(claims.Room, claims.Identity) {
		c.fail(reqID, &proto.Error{Code: proto.CodeRoomFull, Message: "room is full"}, websocket.ClosePolicyViolation)
		return
	}
	if s.chat != nil && s.hub.sessionCount(claims.Identity) >= s.cfg.MaxSessionsPerIdentity {
		c.fail(reqID, &proto.Error{Code: proto.CodeTooManySessions, Message: "this identity has too many open sessions"}, websocket.ClosePolicyViolation)
		return
	}
	name := displayNameFor(claims, body.Name)
	sid := ids.New("PA_")
	log := c.log.With("room", claims.Room, "participant", sid, "identity", claims.Identity)
	peer, err := s.media.Join(claims.Room, sid, sfu.JoinOptions{
		Events:       peerEvents{c: c},
		CanPublish:   claims.Grants.Publish,
		CanSubscribe: claims.Grants.Subscribe,
		Logger:       log,
	})
	if err != nil {
		log.Error("media join failed", "err", err)
		c.fail(reqID, &proto.Error{Code: proto.CodeInternal, Message: "media session could not be created"}, websocket.CloseInternalServerErr)
		return
	}
	ice := []proto.ICEServerView{}
	if s.ice != nil {
		ice = iceServerViews(s.ice.ICEServers(claims.Identity))
	}
	c.claims, c.name, c.sid = claims, name, sid
	p := &rooms.Participant{
		SID:            sid,
		Identity:       claims.Identity,
		Name:           name,
		Room:           claims.Room,
		Grants:         claims.Grants,
		JoinedAt:       time.Now(),
		ConversationID: c.joinRoomChat(claims.Room, log),
		Member:         c,
		Media:          peer,
	}
	c.call = &callSession{p: p, peer: peer, log: log}
	perr := s.refuseWhenShuttingDown()
	if perr == nil {
		perr = s.joinRoom(p, reqID, ice)
	}
	if perr != nil {
		c.call = nil
		_ = peer.Close()
		c.fail(reqID, perr, websocket.ClosePolicyViolation)
		return
	}
	// "joined" is already queued (joinRoom); the cap was checked before
	// the media session was made. Requests are handled one at a time per
	// connection, so the chat_sync a client sends after joined runs after
	// this registration: what was stored before it is in the sync, what
	// is stored after it is pushed.
	c.enterIM(0, nil)
	c.afterIMJoined()
	c.joined.Store(true)
	c.extendReadDeadline(s.cfg.PingTimeout)
	c.markReady()
	log.Info("joined")
}

// refuseWhenShuttingDown keeps a join that races shutdown out of the
// room: its connection is already being told bye.
func (s *Server) refuseWhenShuttingDown() *proto.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return &proto.Error{Code: proto.CodeInternal, Message: "server is shutting down"}
	}
	return nil
}

// joinRoom adds p to the directory; its "joined" answers request reqID.
func (s *Server) joinRoom(p *rooms.Participant, reqID string, ice []proto.ICEServerView) *proto.Error {
	err := s.dir.Join(p, func(self proto.ParticipantView, others []proto.ParticipantView) []byte {
		return proto.Encode(proto.TypeJoined, reqID, proto.JoinedBody{
			Protocol:       proto.ProtocolVersion,
			Room:           p.Room,
			Participant:    self,
			Participants:   others,
			ICEServers:     ice,
			PingIntervalMs: s.cfg.PingInterval.Milliseconds(),
			PingTimeoutMs:  s.cfg.PingTimeout.Milliseconds(),
			Grants:         p.Grants,
			ConversationID: p.ConversationID,
		})
	})
	if errors.Is(err, rooms.ErrRoomFull) {
		return &proto.Error{Code: proto.CodeRoomFull, Message: "room is full"}
	}
	if err != nil {
		return &proto.Error{Code: proto.CodeInternal, Message: "could not join the room"}
	}
	return nil
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

func (c *conn) handlePublish(reqID string, cs *callSession, body *proto.PublishBody) *proto.Error {
	if perr := c.s.dir.Announce(cs.p, body.Tracks); perr != nil {
		return perr
	}
	c.enqueue(proto.Encode(proto.TypePublished, reqID, body))
	return nil
}

func (c *conn) handleUnpublish(cs *callSession, body *proto.TrackRef) *proto.Error {
	sid, ok := c.s.dir.ForgetTrack(cs.p, body.TrackID)
	if !ok {
		return &proto.Error{Code: proto.CodeNotFound, Message: "unknown trackId"}
	}
	if sid != "" {
		if err := cs.peer.Unpublish(sid); err != nil {
			// The track may already be gone in the SFU; our state is updated.
			cs.log.Debug("unpublish", "track", sid, "err", err)
		}
	}
	return nil
}

func (c *conn) handleOffer(reqID string, cs *callSession, body *proto.SDPBody) *proto.Error {
	answer, err := cs.peer.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: body.SDP})
	if err != nil {
		cs.log.Info("publisher offer failed", "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "publisher offer rejected"}
	}
	c.enqueue(proto.Encode(proto.TypeAnswer, reqID, proto.SDPBody{SDP: answer.SDP}))
	return nil
}

func (c *conn) handleCandidate(cs *callSession, body *proto.CandidateBody) *proto.Error {
	target := sfu.Publisher
	if body.Target == "subscriber" {
		target = sfu.Subscriber
	}
	if target == sfu.Publisher && !cs.p.Grants.Publish {
		return &proto.Error{Code: proto.CodeForbidden, Message: "token has no publish grant"}
	}
	ci := webrtc.ICECandidateInit{
		Candidate:        body.Candidate.Candidate,
		SDPMid:           body.Candidate.SDPMid,
		SDPMLineIndex:    body.Candidate.SDPMLineIndex,
		UsernameFragment: body.Candidate.UsernameFragment,
	}
	if err := cs.peer.AddICECandidate(target, ci); err != nil {
		cs.log.Debug("add ICE candidate", "target", body.Target, "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "candidate rejected"}
	}
	return nil
}

func (c *conn) handleMute(cs *callSession, body *proto.MuteBody) *proto.Error {
	sid, ok := c.s.dir.SetMuted(cs.p, body.TrackID, *body.Muted)
	if !ok {
		return &proto.Error{Code: proto.CodeNotFound, Message: "unknown trackId"}
	}
	if sid != "" {
		// Stop forwarding a muted track instead of relaying black frames
		// or silence to every subscriber.
		if err := cs.peer.SetTrackMuted(sid, *body.Muted); err != nil {
			cs.log.Debug("set track muted", "track", sid, "err", err)
		}
	}
	return nil
}
