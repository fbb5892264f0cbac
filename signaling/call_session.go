package signaling

import (
	"errors"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// callSession is the call side of a session: its participant in the room
// directory, its SFU session, and the SFU's events, which it applies
// itself (sfu_events.go) rather than leaving them to the writer.
type callSession struct {
	ss     *session
	p      *rooms.Participant
	peer   MediaPeer
	log    *slog.Logger // carries room, participant and identity
	events *eventQueue
	// gestures are the budgets of hands and reactions (hands.go).
	gestures *gestures
}

// joinCall admits a call session: a room participant with media. The
// close code goes with the refusal.
func (c *wsConn) joinCall(ss *session, reqID string) (*proto.Error, int) {
	s := c.s
	claims := ss.claims
	refuse := func(code, msg string) (*proto.Error, int) {
		return &proto.Error{Code: code, Message: msg}, websocket.ClosePolicyViolation
	}
	if claims.Room == auth.AllRooms || !rooms.ValidName(claims.Room) {
		return refuse(proto.CodeUnauthorized, "token does not name a joinable room")
	}
	if perr := s.placeRoom(claims.Room); perr != nil { // cluster.go
		return perr, websocket.CloseNormalClosure
	}
	if !s.dir.HasSpace(claims.Room, claims.Identity) {
		return refuse(proto.CodeRoomFull, "room is full")
	}
	if s.chat != nil && s.hub.sessionCount(claims.Identity) >= s.cfg.MaxSessionsPerIdentity {
		return refuse(proto.CodeTooManySessions, "this identity has too many open sessions")
	}
	ss.sid = ids.New("PA_")
	cs := &callSession{ss: ss, log: c.log.With("room", claims.Room, "participant", ss.sid, "identity", claims.Identity), gestures: newGestures()}
	cs.events = newEventQueue(cs.apply, c.dropSlow)
	peer, err := s.media.Join(claims.Room, ss.sid, sfu.JoinOptions{
		Events:       peerEvents{q: cs.events},
		CanPublish:   claims.Grants.Publish,
		CanSubscribe: claims.Grants.Subscribe,
		Logger:       cs.log,
	})
	if err != nil {
		cs.log.Error("media join failed", "err", err)
		return &proto.Error{Code: proto.CodeInternal, Message: "media session could not be created"}, websocket.CloseInternalServerErr
	}
	cs.peer = peer
	ice := []proto.ICEServerView{}
	if s.ice != nil {
		ice = iceServerViews(s.ice.ICEServers(claims.Identity))
	}
	cs.p = &rooms.Participant{
		SID:            ss.sid,
		Identity:       claims.Identity,
		Name:           ss.name,
		Room:           claims.Room,
		Grants:         claims.Grants,
		JoinedAt:       time.Now(),
		ConversationID: s.joinRoomChat(ss, cs.log),
		Member:         cs,
		Media:          peer,
		Moderator:      s.mod.joinsAsModerator(claims),
	}
	perr := s.refuseWhenShuttingDown()
	if perr == nil {
		perr = s.joinRoom(cs.p, reqID, ice)
	}
	if perr == nil {
		s.mod.joined(cs.p) // moderation.go
	}
	if perr != nil {
		cs.events.close()
		_ = peer.Close()
		return perr, websocket.ClosePolicyViolation
	}
	ss.call = cs
	// "joined" is already queued (joinRoom); the cap was checked before
	// the media session was made. Requests are handled one at a time per
	// connection, so the chat_sync a client sends after joined runs after
	// this registration: what was stored before it is in the sync, what
	// is stored after it is pushed.
	if s.chat != nil {
		ss.chat = newChatSession(ss)
		ss.chat.enter(0, nil)
	}
	return nil, 0
}

// The room directory reaches the participant through its session.
var _ rooms.Member = (*callSession)(nil)

// Send queues a room message (rooms.Member).
func (cs *callSession) Send(msg []byte) { cs.ss.out.enqueue(msg) }

// Bye says goodbye and closes (rooms.Member).
func (cs *callSession) Bye(reason string) { cs.ss.out.sendBye(reason) }

// end leaves the room, closes the media session and stops applying its
// events.
func (cs *callSession) end() {
	cs.ss.s.dir.Leave(cs.p)
	cs.ss.s.mod.left(cs.p)
	cs.ss.s.rec.left(cs.p.Room)
	cs.ss.s.clientStats.forget(cs.p.SID)
	cs.ss.s.rst.left(cs.p.Room)
	if err := cs.peer.Close(); err != nil {
		cs.log.Debug("closing media session", "err", err)
	}
	cs.events.close()
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
	settings := s.mod.settingsView(p.Room)
	err := s.dir.Join(p, func(self proto.ParticipantView, others []proto.ParticipantView) []byte {
		jb := s.joinedBody(p.Room, self, others, ice, p.Grants, p.ConversationID)
		jb.Settings = &settings
		jb.Recording = s.rec.state(p.Room) // under the directory's lock: see recorder
		jb.Restream = s.rst.state(p.Room)
		return proto.Encode(proto.TypeJoined, reqID, jb)
	})
	if errors.Is(err, rooms.ErrRoomFull) {
		return &proto.Error{Code: proto.CodeRoomFull, Message: "room is full"}
	}
	if err != nil {
		return &proto.Error{Code: proto.CodeInternal, Message: "could not join the room"}
	}
	return nil
}

// joinRoomChat makes a call participant with the chat grant a member of
// the room's conversation and returns its id. A failure only costs the
// room its chat.
func (s *Server) joinRoomChat(ss *session, log *slog.Logger) string {
	if s.chat == nil || !ss.claims.Grants.Chat {
		return ""
	}
	ctx, cancel := s.chatCtx()
	defer cancel()
	conv, err := s.chat.JoinRoom(ctx, ss.claims.Room, ss.chatIdentity(), chat.RoleMember)
	if err != nil {
		log.Error("joining room chat", "err", err)
		return ""
	}
	return conv.ID
}

func (cs *callSession) publish(reqID string, body *proto.PublishBody) *proto.Error {
	if perr := cs.ss.s.dir.Announce(cs.p, body.Tracks); perr != nil {
		return perr
	}
	cs.markScreens() // screens.go
	cs.ss.out.enqueue(proto.Encode(proto.TypePublished, reqID, body))
	return nil
}

func (cs *callSession) unpublish(body *proto.TrackRef) *proto.Error {
	sid, ok := cs.ss.s.dir.ForgetTrack(cs.p, body.TrackID)
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

func (cs *callSession) offer(reqID string, body *proto.SDPBody) *proto.Error {
	answer, err := cs.peer.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: body.SDP})
	if err != nil {
		cs.log.Info("publisher offer failed", "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "publisher offer rejected"}
	}
	cs.ss.out.enqueue(proto.Encode(proto.TypeAnswer, reqID, proto.SDPBody{SDP: answer.SDP}))
	return nil
}

func (cs *callSession) answer(body *proto.SDPBody) *proto.Error {
	if err := cs.peer.HandleAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body.SDP}); err != nil {
		cs.log.Info("subscriber answer failed", "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "subscriber answer rejected"}
	}
	return nil
}

func (cs *callSession) candidate(body *proto.CandidateBody) *proto.Error {
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

func (cs *callSession) restartICE() *proto.Error {
	if err := cs.peer.RestartICE(); err != nil {
		cs.log.Info("ICE restart failed", "err", err)
		return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "ICE restart failed"}
	}
	return nil
}

// videoView hands a subscriber's tile report to the SFU, which chooses
// the simulcast layer from it and the subscriber's bandwidth: the
// smallest that covers the tile, none while it is not seen.
func (cs *callSession) videoView(body *proto.VideoViewBody) *proto.Error {
	if err := cs.peer.SetView(body.TrackSID, body.Width, body.Height, *body.Visible); err != nil {
		// A tile may report a track the subscriber just lost (or not
		// yet got): nothing to answer.
		cs.log.Debug("video view", "track", body.TrackSID, "err", err)
	}
	return nil
}

func (cs *callSession) mute(body *proto.MuteBody) *proto.Error {
	sid, ok := cs.ss.s.dir.SetMuted(cs.p, body.TrackID, *body.Muted)
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
