package signaling

import (
	"context"

	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// typingBurst lets a client send a few typing notices at once (one per
// conversation it types in) before typing_rate_per_second applies.
const typingBurst = 3

// testHooks lets tests inject faults at exact points of the chat path.
type testHooks struct {
	// afterChatSend runs after the chat service stored a message and
	// before its ack is queued (the network-cut test closes the socket).
	afterChatSend func(c *chatSession)
}

// chatSession is the chat side of a session (docs/protocol.md, Chat,
// presence and calls): its rate limits, its registration in the hub,
// and the presence change that registration made. Every session has one
// while chat is enabled, call sessions included. It reaches the socket
// through its session's outbound, and is itself the outbound the hub and
// the call table hold for it.
type chatSession struct {
	s  *Server
	ss *session

	// Used by the reader only.
	writes *rate.Limiter // chat_rate_per_second (proto.NeedWrite)
	typing *rate.Limiter // typing_rate_per_second

	// registered is set once the session is in the hub; the presence
	// pair is what registering changed, announced after "joined".
	registered                    bool
	presenceBefore, presenceAfter string
	// peers are the identity's direct peers, read at entry in cluster
	// mode: the presence snapshot covers them wherever they are connected.
	peers []string
}

var _ outbound = (*chatSession)(nil)

func newChatSession(ss *session) *chatSession {
	cfg := &ss.s.cfg
	return &chatSession{
		s: ss.s, ss: ss,
		writes: rate.NewLimiter(rate.Limit(cfg.ChatRatePerSecond), cfg.ChatRateBurst),
		typing: rate.NewLimiter(rate.Limit(cfg.TypingRatePerSecond), typingBurst),
	}
}

func (c *chatSession) enqueue(msg []byte)                     { c.ss.out.enqueue(msg) }
func (c *chatSession) sendError(re string, perr *proto.Error) { c.ss.out.sendError(re, perr) }
func (c *chatSession) sendBye(reason string)                  { c.ss.out.sendBye(reason) }

func (c *chatSession) identity() string            { return c.ss.identity() }
func (c *chatSession) displayName() string         { return c.ss.name }
func (c *chatSession) chatIdentity() chat.Identity { return c.ss.chatIdentity() }
func (c *chatSession) inCall() bool                { return c.ss.call != nil }

// enter registers the session in the hub and loads its conversations
// into the index; limit and joined are as for hub.register. The presence
// change follows in announce.
func (c *chatSession) enter(limit int, joined []byte) bool {
	before, after, ok := c.s.hub.register(c, limit, joined)
	if !ok {
		return false
	}
	c.presenceBefore, c.presenceAfter = before, after
	c.registered = true
	if c.ss.claims.Grants.Chat {
		c.loadConversations()
	}
	return true
}

// loadConversations indexes the identity's conversations so pushes reach
// this session. A message stored between this read and the index update
// is not pushed here; the client's chat_sync after joined fetches it.
func (c *chatSession) loadConversations() {
	ctx, cancel := c.s.chatCtx()
	defer cancel()
	sums, err := c.s.chat.Conversations(ctx, c.identity())
	if err != nil {
		c.ss.log.Error("loading conversations", "err", err)
		return
	}
	for _, sum := range sums {
		c.s.hub.addMembers(sum.Conversation.ID, sum.Conversation.Kind, c.identity())
		if sum.Conversation.Kind == chat.KindDirect && c.s.cpres != nil && len(c.peers) < maxPresenceContacts {
			c.peers = append(c.peers, proto.DirectPeer(sum.Conversation.Key, c.identity()))
		}
	}
}

// announce tells the identity's contacts about the new session's
// presence and sends it its contacts' presence.
func (c *chatSession) announce() {
	if !c.registered {
		return
	}
	h := c.s.hub
	if c.s.cpres != nil { // cluster mode: the merged view (presence_cluster.go)
		c.s.cpres.sync(c.identity(), nil)
		c.s.cpres.sendSnapshot(c)
		return
	}
	h.announcePresence(c.identity(), c.presenceBefore, c.presenceAfter, nil)
	h.sendPresenceSnapshot(c)
}

// leave runs at teardown: the session leaves the hub, its calls end and
// its presence is updated.
func (c *chatSession) leave() {
	if !c.registered {
		return
	}
	c.s.calls.sessionGone(c)
	before, after, contacts, convs := c.s.hub.unregister(c)
	if c.s.cpres != nil {
		c.s.cpres.sync(c.identity(), convs)
		return
	}
	c.s.hub.announcePresence(c.identity(), before, after, contacts)
}

// chatCtx bounds one chat service call: the server's lifetime plus a
// timeout, so a stuck database cannot hold a reader forever.
func (s *Server) chatCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.baseCtx, chatCallTimeout)
}
