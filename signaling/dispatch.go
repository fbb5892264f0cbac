package signaling

import (
	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/signaling/proto"
)

// handler handles one decoded request of a joined session whose
// proto.Spec needs already hold (so a NeedCall handler has ss.call, a
// NeedChat one ss.chat). It runs on the reader goroutine, so one
// connection's requests are answered in the order they were sent.
type handler func(ss *session, req proto.Request) *proto.Error

// handlers binds every client message type of proto's registry but join
// (which makes the session, see wsConn.dispatch) to its handler;
// TestEveryTypeHasAHandler keeps the two in step.
//
//nolint:gochecknoglobals // a read-only table, filled at init
var handlers = map[string]handler{
	proto.TypePublish:   callReq((*callSession).publish),
	proto.TypeUnpublish: callBody((*callSession).unpublish),
	proto.TypeOffer:     callReq((*callSession).offer),
	proto.TypeAnswer:    callBody((*callSession).answer),
	proto.TypeCandidate: callBody((*callSession).candidate),
	proto.TypeICERestart: func(ss *session, _ proto.Request) *proto.Error {
		return ss.call.restartICE()
	},
	proto.TypeMute:      callBody((*callSession).mute),
	proto.TypeVideoView: callBody((*callSession).videoView),
	proto.TypePong: func(*session, proto.Request) *proto.Error {
		return nil // any message already counted as a heartbeat
	},
	proto.TypeLeave: func(ss *session, _ proto.Request) *proto.Error {
		if cs := ss.call; cs != nil {
			// Tell the room now rather than after the close handshake.
			ss.s.dir.Leave(cs.p)
		}
		ss.out.sendBye(proto.ByeLeft)
		return nil
	},

	proto.TypeChatSend:    chatReq((*chatSession).handleChatSend),
	proto.TypeChatEdit:    chatReq((*chatSession).handleChatEdit),
	proto.TypeChatDelete:  chatReq((*chatSession).handleChatDelete),
	proto.TypeChatReact:   chatReq((*chatSession).handleChatReact),
	proto.TypeChatSync:    chatReq((*chatSession).handleChatSync),
	proto.TypeChatHistory: chatReq((*chatSession).handleChatHistory),
	proto.TypeChatRange:   chatReq((*chatSession).handleChatRange),
	proto.TypeChatReceipt: chatReq((*chatSession).handleChatReceipt),
	proto.TypeChatDirect:  chatReq((*chatSession).handleChatDirect),
	proto.TypeChatGroup:   chatReq((*chatSession).handleChatGroup),
	proto.TypeTyping: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleTyping(r.Body.(*proto.TypingBody))
	},
	proto.TypeCall:        chatReq((*chatSession).handleCall),
	proto.TypeCallAccept:  answerCall,
	proto.TypeCallDecline: answerCall,
	proto.TypeCallCancel:  answerCall,
}

// callReq, callBody and chatReq make a handler of a call or chat
// session method that takes the request id (the *Req ones) and the body
// of the type it is bound to.
func callReq[B proto.Body](m func(*callSession, string, B) *proto.Error) handler {
	return func(ss *session, r proto.Request) *proto.Error { return m(ss.call, r.ID, r.Body.(B)) }
}

func callBody[B proto.Body](m func(*callSession, B) *proto.Error) handler {
	return func(ss *session, r proto.Request) *proto.Error { return m(ss.call, r.Body.(B)) }
}

func chatReq[B proto.Body](m func(*chatSession, string, B) *proto.Error) handler {
	return func(ss *session, r proto.Request) *proto.Error { return m(ss.chat, r.ID, r.Body.(B)) }
}

func answerCall(ss *session, r proto.Request) *proto.Error {
	callID := r.Body.(*proto.CallRefBody).CallID
	if cc := ss.s.ccalls; cc != nil && cc.forward(ss, r.ID, r.Type, callID) { // call_cluster.go
		return nil // the call's node answers
	}
	return ss.s.calls.answer(ss.chatIdentity(), ss.chat, r.ID, r.Type, callID)
}

// dispatch admits a join, or checks what the request's type needs
// (proto.Spec) of the joined session and runs its handler.
func (c *wsConn) dispatch(req proto.Request) {
	if c.joined.Load() && c.heldInLobby(req) { // lobby.go
		return
	}
	if req.Type == proto.TypeJoin {
		if c.joined.Load() {
			c.sendError(req.ID, proto.BadRequest("already joined"))
			return
		}
		c.handleJoin(req.ID, req.Body.(*proto.JoinBody))
		return
	}
	if !c.joined.Load() {
		c.fail(req.ID, &proto.Error{Code: proto.CodeNotJoined, Message: "the first message must be join"}, websocket.ClosePolicyViolation)
		return
	}
	spec, _ := proto.Lookup(req.Type) // DecodeRequest accepts registered types only
	perr := c.sess.admit(req.Type, spec)
	if perr == nil {
		perr = c.sess.s.mod.restrict(c.sess, req) // moderation.go: room settings
	}
	if perr == nil {
		perr = handlers[req.Type](c.sess, req)
	}
	if perr != nil {
		c.sendError(req.ID, perr)
	}
}

// admit checks a joined session's preconditions for spec, in the order
// proto.Need lists them.
func (ss *session) admit(typ string, spec proto.Spec) *proto.Error {
	if spec.Has(proto.NeedChat) {
		if ss.chat == nil {
			return &proto.Error{Code: proto.CodeUnavailable, Message: "chat is not enabled on this server"}
		}
		if !ss.claims.Grants.Chat {
			return &proto.Error{Code: proto.CodeForbidden, Message: "token has no chat grant"}
		}
	}
	if spec.Has(proto.NeedWrite) && !ss.chat.writes.Allow() {
		return &proto.Error{Code: proto.CodeRateLimited, Message: "chat write rate limit exceeded (chat_rate_per_second); nothing stored"}
	}
	if spec.Has(proto.NeedCall) && ss.call == nil {
		// A messaging-only session has no media and no room.
		return &proto.Error{Code: proto.CodeNotInCall, Message: typ + " needs a call session (a token with a room)"}
	}
	if spec.Has(proto.NeedPublish) && !ss.call.p.Grants.Publish {
		return &proto.Error{Code: proto.CodeForbidden, Message: "token has no publish grant"}
	}
	return nil
}
