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
	proto.TypePublish: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.publish(r.ID, r.Body.(*proto.PublishBody))
	},
	proto.TypeUnpublish: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.unpublish(r.Body.(*proto.TrackRef))
	},
	proto.TypeOffer: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.offer(r.ID, r.Body.(*proto.SDPBody))
	},
	proto.TypeAnswer: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.answer(r.Body.(*proto.SDPBody))
	},
	proto.TypeCandidate: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.candidate(r.Body.(*proto.CandidateBody))
	},
	proto.TypeICERestart: func(ss *session, _ proto.Request) *proto.Error {
		return ss.call.restartICE()
	},
	proto.TypeMute: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.mute(r.Body.(*proto.MuteBody))
	},
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

	proto.TypeChatSend: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatSend(r.ID, r.Body.(*proto.ChatSendBody))
	},
	proto.TypeChatEdit: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatEdit(r.ID, r.Body.(*proto.ChatEditBody))
	},
	proto.TypeChatDelete: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatDelete(r.ID, r.Body.(*proto.ChatDeleteBody))
	},
	proto.TypeChatSync: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatSync(r.ID, r.Body.(*proto.ChatSyncBody))
	},
	proto.TypeChatHistory: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatHistory(r.ID, r.Body.(*proto.ChatHistoryBody))
	},
	proto.TypeChatRange: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatRange(r.ID, r.Body.(*proto.ChatRangeBody))
	},
	proto.TypeChatReceipt: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatReceipt(r.ID, r.Body.(*proto.ChatReceiptBody))
	},
	proto.TypeChatDirect: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatDirect(r.ID, r.Body.(*proto.ChatDirectBody))
	},
	proto.TypeChatGroup: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleChatGroup(r.ID, r.Body.(*proto.ChatGroupBody))
	},
	proto.TypeTyping: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleTyping(r.Body.(*proto.TypingBody))
	},
	proto.TypeCall: func(ss *session, r proto.Request) *proto.Error {
		return ss.chat.handleCall(r.ID, r.Body.(*proto.CallBody))
	},
	proto.TypeCallAccept:  answerCall,
	proto.TypeCallDecline: answerCall,
	proto.TypeCallCancel:  answerCall,
}

func answerCall(ss *session, r proto.Request) *proto.Error {
	return ss.s.calls.answer(ss.chatIdentity(), ss.chat, r.ID, r.Type, r.Body.(*proto.CallRefBody).CallID)
}

// dispatch admits a join, or checks what the request's type needs
// (proto.Spec) of the joined session and runs its handler.
func (c *wsConn) dispatch(req proto.Request) {
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
