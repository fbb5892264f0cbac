package signaling

import (
	"context"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// typingBurst lets a client send a few typing notices at once (one per
// conversation it types in) before typing_rate_per_second applies.
const typingBurst = 3

// testHooks lets tests inject faults at exact points of the chat path.
type testHooks struct {
	// afterChatSend runs after the chat service stored a message and
	// before its ack is queued (the network-cut test closes the socket).
	afterChatSend func(c *conn)
}

func (c *conn) identity() string { return c.claims.Identity }

func (c *conn) displayName() string { return c.name }

func (c *conn) chatIdentity() chat.Identity {
	return chat.Identity{ID: c.claims.Identity, Name: c.name}
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

// handleIMJoin admits a messaging-only session: a token with no room and
// the chat grant. It gets "joined" with an empty room and no media.
func (c *conn) handleIMJoin(reqID string, claims auth.Claims, body *proto.JoinBody) {
	s := c.s
	if s.chat == nil {
		c.fail(reqID, &proto.Error{Code: proto.CodeUnavailable, Message: "chat is not enabled on this server"}, websocket.ClosePolicyViolation)
		return
	}
	c.claims, c.name, c.sid = claims, displayNameFor(claims, body.Name), ids.New("SE_")
	joined := proto.Encode(proto.TypeJoined, reqID, proto.JoinedBody{
		Protocol:       proto.ProtocolVersion,
		Participant:    proto.ParticipantView{SID: c.sid, Identity: claims.Identity, Name: c.name, Tracks: []proto.TrackView{}},
		Participants:   []proto.ParticipantView{},
		ICEServers:     []proto.ICEServerView{},
		PingIntervalMs: s.cfg.PingInterval.Milliseconds(),
		PingTimeoutMs:  s.cfg.PingTimeout.Milliseconds(),
		Grants:         claims.Grants,
	})
	if !c.enterIM(s.cfg.MaxSessionsPerIdentity, joined) {
		c.fail(reqID, &proto.Error{Code: proto.CodeTooManySessions, Message: "this identity has too many open sessions"}, websocket.ClosePolicyViolation)
		return
	}
	c.afterIMJoined()
	c.joined.Store(true)
	c.extendReadDeadline(s.cfg.PingTimeout)
	c.markReady()
	c.log.Info("messaging session joined", "identity", claims.Identity, "session", c.sid)
}

// enterIM registers c in the hub and loads its conversations into the
// index; limit and joined are as for hub.register. Presence and snapshots
// follow in afterIMJoined.
func (c *conn) enterIM(limit int, joined []byte) bool {
	s := c.s
	if s.chat == nil {
		return true
	}
	before, after, ok := s.hub.register(c, limit, joined)
	if !ok {
		return false
	}
	c.presenceBefore, c.presenceAfter = before, after
	c.im = true
	if c.claims.Grants.Chat {
		c.loadConversations()
	}
	return true
}

// loadConversations indexes the identity's conversations so pushes reach
// this session. A message stored between this read and the index update
// is not pushed here; the client's chat_sync after joined fetches it.
func (c *conn) loadConversations() {
	ctx, cancel := c.s.chatCtx()
	defer cancel()
	sums, err := c.s.chat.Conversations(ctx, c.identity())
	if err != nil {
		c.log.Error("loading conversations", "err", err)
		return
	}
	for _, sum := range sums {
		c.s.hub.addMembers(sum.Conversation.ID, sum.Conversation.Kind, c.identity())
	}
}

// afterIMJoined announces the new session's presence and sends it its
// contacts' presence.
func (c *conn) afterIMJoined() {
	if !c.im {
		return
	}
	h := c.s.hub
	h.announcePresence(c.identity(), c.presenceBefore, c.presenceAfter, nil)
	h.sendPresenceSnapshot(c)
}

// leaveIM runs at teardown: the session leaves the hub, its calls end and
// its presence is updated.
func (c *conn) leaveIM() {
	if !c.im {
		return
	}
	s := c.s
	s.calls.sessionGone(c)
	before, after, contacts := s.hub.unregister(c)
	s.hub.announcePresence(c.identity(), before, after, contacts)
}

// chatCtx bounds one chat service call: the server's lifetime plus a
// timeout, so a stuck database cannot hold a reader forever.
func (s *Server) chatCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.baseCtx, chatCallTimeout)
}

// chatCallTimeout bounds one chat store call made for a client.
const chatCallTimeout = 10 * time.Second
