package signaling

import (
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// session is what a connection is once joined: an identity with a call
// side (a room participant with media; nil for a messaging session) and
// a chat side (nil when chat is off). It reaches its connection only
// through out.
type session struct {
	s      *Server
	out    outbound
	log    *slog.Logger
	claims auth.Claims
	name   string // shown to others
	sid    string // the participant sid of a call, "SE_..." otherwise
	call   *callSession
	chat   *chatSession
	tokens *tokenRefresher
	// lobby is set while (and after) the session waited in the room's
	// lobby (lobby.go).
	lobby *lobbyWait
}

func (ss *session) identity() string { return ss.claims.Identity }

func (ss *session) chatIdentity() chat.Identity {
	return chat.Identity{ID: ss.claims.Identity, Name: ss.name}
}

// end runs at teardown, on the connection's reader: the session leaves
// the hub (its calls end, its presence changes) and the room, and its
// media and token refreshes stop.
func (ss *session) end() {
	if ss.lobby != nil {
		ss.lobby.stop() // after this, admission no longer runs
	}
	if ss.tokens != nil {
		ss.tokens.stop()
	}
	if ss.chat != nil {
		ss.chat.leave()
	}
	if ss.call != nil {
		ss.call.end()
	}
}

// handleJoin admits the connection: a call session for a token with a
// room, a messaging session for a room-less token with the chat grant.
func (c *wsConn) handleJoin(reqID string, body *proto.JoinBody) {
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
	if claims.Room != "" && s.removals.revoked(claims.Room, claims.Identity, claims.IssuedAt, time.Now()) {
		c.log.Info("join refused", "reason", "removed from the room")
		c.fail(reqID, &proto.Error{Code: proto.CodeUnauthorized, Message: "token revoked: removed from this room"}, websocket.ClosePolicyViolation)
		return
	}
	if body.Protocol != proto.ProtocolVersion {
		c.fail(reqID, &proto.Error{Code: proto.CodeProtocolVersion, Message: "this server speaks protocol 1"}, websocket.ClosePolicyViolation)
		return
	}
	c.tokenShown.Store(true)
	s.rememberIdentity(claims.Identity)
	ss := &session{s: s, out: c, log: c.log, claims: claims, name: displayNameFor(claims, body.Name)}
	var perr *proto.Error
	closeCode := websocket.ClosePolicyViolation
	if claims.Room == "" {
		perr = c.joinMessaging(ss, reqID)
	} else if perr = s.placeRoom(claims.Room); perr != nil && perr.Code == proto.CodeWrongNode && s.relayJoins {
		if c.relayedBy != "" {
			// Relayed here by a node that took this one for the host:
			// the room moved meanwhile, and the client's retry finds it.
			c.log.Info("relayed join of a room hosted elsewhere refused", "room", claims.Room, "relayed_by", c.relayedBy)
			c.fail(reqID, errRelayUnavailable, websocket.CloseTryAgainLater)
			return
		}
		c.relayJoin(reqID, perr.URL, c.joinFrame) // join_relay.go
		return
	} else if perr == nil { // cluster.go: before the lobby, whose moderators are on the room's node
		var wait bool
		if wait, perr = s.admission(ss); wait { // moderation.go
			c.sess = ss
			c.enterLobby(ss, reqID) // lobby.go
			return
		}
		if perr == nil {
			perr, closeCode = c.joinCall(ss, reqID)
		}
	}
	if perr != nil {
		c.fail(reqID, perr, closeCode)
		return
	}
	c.sess = ss
	c.started(ss)
}

// started runs once a session has been answered "joined": straight
// after join, or once admitted from the lobby.
func (c *wsConn) started(ss *session) {
	s := c.s
	claims := ss.claims
	// After "joined": the presence it changed, then a fresh token, then
	// (below) what the SFU said meanwhile.
	if ss.chat != nil {
		ss.chat.announce()
	}
	ss.tokens = newTokenRefresher(ss.refreshToken, c, s.cfg.TokenTTL/2, ss.log)
	ss.tokens.start()
	c.joined.Store(true)
	c.extendReadDeadline(s.cfg.PingTimeout)
	if ss.call != nil {
		// SFU events waited for "joined"; the client may now see offers.
		ss.call.events.start()
		ss.call.log.Info("joined")
	} else {
		ss.log.Info("messaging session joined", "identity", claims.Identity, "session", ss.sid)
	}
}

// joinMessaging admits a messaging-only session: no room, no media.
func (c *wsConn) joinMessaging(ss *session, reqID string) *proto.Error {
	s := c.s
	if s.chat == nil {
		return &proto.Error{Code: proto.CodeUnavailable, Message: "chat is not enabled on this server"}
	}
	ss.sid = ids.New("SE_")
	self := proto.ParticipantView{SID: ss.sid, Identity: ss.identity(), Name: ss.name, Tracks: []proto.TrackView{}}
	joined := proto.Encode(proto.TypeJoined, reqID, s.joinedBody("", self, []proto.ParticipantView{}, []proto.ICEServerView{}, ss.claims.Grants, ""))
	ss.chat = newChatSession(ss)
	if !ss.chat.enter(s.cfg.MaxSessionsPerIdentity, joined) {
		ss.chat = nil
		return &proto.Error{Code: proto.CodeTooManySessions, Message: "this identity has too many open sessions"}
	}
	return nil
}

// joinedBody is "joined" for a call session in room (others, ICE servers
// and the room's conversation) or, with room "", a messaging session.
func (s *Server) joinedBody(room string, self proto.ParticipantView, others []proto.ParticipantView, ice []proto.ICEServerView, grants auth.Grants, convID string) proto.JoinedBody {
	return proto.JoinedBody{
		Protocol:       proto.ProtocolVersion,
		Room:           room,
		Participant:    self,
		Participants:   others,
		ICEServers:     ice,
		PingIntervalMs: s.cfg.PingInterval.Milliseconds(),
		PingTimeoutMs:  s.cfg.PingTimeout.Milliseconds(),
		Grants:         grants,
		ConversationID: convID,
	}
}

// displayNameFor picks the name shown to others: the token's, else the
// one the client asked for, else the identity.
func displayNameFor(claims auth.Claims, requested string) string {
	name := claims.Name
	if name == "" {
		name = cleanName(requested)
	}
	if name == "" {
		name = claims.Identity
	}
	return name
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

// refreshToken issues the session's next token: the joined identity, room
// and grants again, never more. The admin grant is not refreshed: it is
// for the admin API, which a room session does not need, and a refreshed
// token must not turn a short admin token into a long-lived one.
func (ss *session) refreshToken() (string, error) {
	grants := ss.claims.Grants
	grants.Admin = false
	return ss.s.keys.Issue(ss.claims.KeyID, auth.Claims{
		Identity: ss.claims.Identity,
		Name:     ss.claims.Name,
		Room:     ss.claims.Room,
		Grants:   grants,
	}, ss.s.cfg.TokenTTL)
}

// chatCallTimeout bounds one chat store call made for a client.
const chatCallTimeout = 10 * time.Second
