package signaling

import (
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/proto"
)

// handler handles one decoded request whose proto.Spec needs already
// hold. It runs on the reader goroutine, so one connection's requests are
// answered in the order they were sent.
type handler func(c *conn, req proto.Request) *proto.Error

// handlers binds every client message type of proto's registry to its
// handler; TestEveryTypeHasAHandler keeps the two in step.
//
//nolint:gochecknoglobals // a read-only table, filled at init
var handlers = map[string]handler{
	proto.TypeJoin: func(c *conn, r proto.Request) *proto.Error {
		c.handleJoin(r.ID, r.Body.(*proto.JoinBody))
		return nil
	},
	proto.TypePublish: func(c *conn, r proto.Request) *proto.Error {
		return c.handlePublish(r.ID, c.call, r.Body.(*proto.PublishBody))
	},
	proto.TypeUnpublish: func(c *conn, r proto.Request) *proto.Error {
		return c.handleUnpublish(c.call, r.Body.(*proto.TrackRef))
	},
	proto.TypeOffer: func(c *conn, r proto.Request) *proto.Error {
		return c.handleOffer(r.ID, c.call, r.Body.(*proto.SDPBody))
	},
	proto.TypeAnswer: func(c *conn, r proto.Request) *proto.Error {
		cs := c.call
		if err := cs.peer.HandleAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.Body.(*proto.SDPBody).SDP}); err != nil {
			cs.log.Info("subscriber answer failed", "err", err)
			return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "subscriber answer rejected"}
		}
		return nil
	},
	proto.TypeCandidate: func(c *conn, r proto.Request) *proto.Error {
		return c.handleCandidate(c.call, r.Body.(*proto.CandidateBody))
	},
	proto.TypeICERestart: func(c *conn, _ proto.Request) *proto.Error {
		if err := c.call.peer.RestartICE(); err != nil {
			c.call.log.Info("ICE restart failed", "err", err)
			return &proto.Error{Code: proto.CodeNegotiationFailed, Message: "ICE restart failed"}
		}
		return nil
	},
	proto.TypeMute: func(c *conn, r proto.Request) *proto.Error {
		return c.handleMute(c.call, r.Body.(*proto.MuteBody))
	},
	proto.TypePong: func(*conn, proto.Request) *proto.Error {
		return nil // any message already counted as a heartbeat
	},
	proto.TypeLeave: func(c *conn, _ proto.Request) *proto.Error {
		if cs := c.call; cs != nil {
			// Tell the room now rather than after the close handshake.
			c.s.dir.Leave(cs.p)
		}
		c.sendBye(proto.ByeLeft)
		return nil
	},

	proto.TypeChatSend: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatSend(r.ID, r.Body.(*proto.ChatSendBody))
	},
	proto.TypeChatEdit: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatEdit(r.ID, r.Body.(*proto.ChatEditBody))
	},
	proto.TypeChatDelete: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatDelete(r.ID, r.Body.(*proto.ChatDeleteBody))
	},
	proto.TypeChatSync: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatSync(r.ID, r.Body.(*proto.ChatSyncBody))
	},
	proto.TypeChatHistory: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatHistory(r.ID, r.Body.(*proto.ChatHistoryBody))
	},
	proto.TypeChatRange: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatRange(r.ID, r.Body.(*proto.ChatRangeBody))
	},
	proto.TypeChatReceipt: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatReceipt(r.ID, r.Body.(*proto.ChatReceiptBody))
	},
	proto.TypeChatDirect: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatDirect(r.ID, r.Body.(*proto.ChatDirectBody))
	},
	proto.TypeChatGroup: func(c *conn, r proto.Request) *proto.Error {
		return c.handleChatGroup(r.ID, r.Body.(*proto.ChatGroupBody))
	},
	proto.TypeTyping: func(c *conn, r proto.Request) *proto.Error {
		return c.handleTyping(r.Body.(*proto.TypingBody))
	},
	proto.TypeCall: func(c *conn, r proto.Request) *proto.Error {
		return c.handleCall(r.ID, r.Body.(*proto.CallBody))
	},
	proto.TypeCallAccept:  answerCall,
	proto.TypeCallDecline: answerCall,
	proto.TypeCallCancel:  answerCall,
}

func answerCall(c *conn, r proto.Request) *proto.Error {
	return c.s.calls.answer(c.chatIdentity(), c, r.ID, r.Type, r.Body.(*proto.CallRefBody).CallID)
}

// dispatch checks what the request's type needs (proto.Spec) and runs
// its handler.
func (c *conn) dispatch(req proto.Request) {
	spec, _ := proto.Lookup(req.Type) // DecodeRequest accepts registered types only
	if req.Type == proto.TypeJoin && c.joined.Load() {
		c.sendError(req.ID, proto.BadRequest("already joined"))
		return
	}
	if spec.Has(proto.NeedJoined) && !c.joined.Load() {
		c.fail(req.ID, &proto.Error{Code: proto.CodeNotJoined, Message: "the first message must be join"}, websocket.ClosePolicyViolation)
		return
	}
	perr := c.admit(req.Type, spec)
	if perr == nil {
		perr = handlers[req.Type](c, req)
	}
	if perr != nil {
		c.sendError(req.ID, perr)
	}
}

// admit checks a joined connection's preconditions for spec, in the
// order proto.Need lists them.
func (c *conn) admit(typ string, spec proto.Spec) *proto.Error {
	if spec.Has(proto.NeedChat) {
		if c.s.chat == nil {
			return &proto.Error{Code: proto.CodeUnavailable, Message: "chat is not enabled on this server"}
		}
		if !c.claims.Grants.Chat {
			return &proto.Error{Code: proto.CodeForbidden, Message: "token has no chat grant"}
		}
	}
	if spec.Has(proto.NeedWrite) && !c.chatLimiter.Allow() {
		return &proto.Error{Code: proto.CodeRateLimited, Message: "chat write rate limit exceeded (chat_rate_per_second); nothing stored"}
	}
	if spec.Has(proto.NeedCall) && c.call == nil {
		// A messaging-only session has no media and no room.
		return &proto.Error{Code: proto.CodeNotInCall, Message: typ + " needs a call session (a token with a room)"}
	}
	if spec.Has(proto.NeedPublish) && !c.call.p.Grants.Publish {
		return &proto.Error{Code: proto.CodeForbidden, Message: "token has no publish grant"}
	}
	return nil
}
