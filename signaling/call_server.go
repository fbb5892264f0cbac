package signaling

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// How the server wires the call table (call_table.go): who is called,
// tokens for the call room, and the history of missed calls.

func (s *Server) newCallTable() *callTable {
	var presence callPresence = localPushes{s.hub}
	if s.ccalls != nil {
		presence = clusterCallPresence{h: s.hub, cp: s.cpres, cc: s.ccalls} // call_cluster.go
	}
	return newCallTable(
		callTableConfig{maxPending: s.cfg.MaxPendingCalls, ringTimeout: s.cfg.CallRingTimeout},
		callEnv{mint: s.mintCallToken, newRoom: func() string { return "call-" + uuid.NewString() }},
		presence, s.storeCallRecords, s.metrics)
}

// handleCall places a call from c.
func (c *chatSession) handleCall(reqID string, b *proto.CallBody) *proto.Error {
	me := c.chatIdentity()
	convID, kind, callees, perr := c.s.resolveCallees(me, b)
	if perr != nil {
		return perr
	}
	if len(callees) > c.s.cfg.MaxCallCallees {
		return &proto.Error{Code: proto.CodeTooLarge, Message: "call: more callees than max_call_callees"}
	}
	return c.s.calls.place(me, c, reqID, convID, kind, callees)
}

// resolveCallees finds the conversation a call rings in and whom it
// rings: the peer of a direct call (opening the direct conversation if
// needed), or the connected members of a group.
func (s *Server) resolveCallees(me chat.Identity, b *proto.CallBody) (convID string, kind chat.ConversationKind, callees []string, perr *proto.Error) {
	ctx, cancel := s.chatCtx()
	defer cancel()
	if b.To != "" {
		if b.To == me.ID {
			return "", "", nil, proto.BadRequest("call: cannot call yourself")
		}
		peer := chat.Identity{ID: b.To, Name: s.hub.displayName(b.To)}
		conv, err := s.chat.Direct(ctx, me, peer)
		if err != nil {
			return "", "", nil, s.chatError("call", err)
		}
		s.announceConversation(conv, []string{me.ID, peer.ID}, nil)
		return conv.ID, chat.KindDirect, []string{b.To}, nil
	}
	conv, err := s.chat.ConversationOf(ctx, me.ID, b.ConversationID)
	if err != nil {
		if errors.Is(err, chat.ErrNotMember) {
			return "", "", nil, &proto.Error{Code: proto.CodeForbidden, Message: "call: not a member of this conversation"}
		}
		return "", "", nil, s.chatError("call", err)
	}
	switch conv.Kind {
	case chat.KindDirect:
		callees = []string{proto.DirectPeer(conv.Key, me.ID)}
	case chat.KindGroup:
		// Only connected members can ring; the others learn of the call
		// from the conversation when it is recorded as missed. In
		// cluster mode those connected to other nodes ring too.
		for _, id := range s.hub.members(conv.ID) {
			if id != me.ID {
				callees = append(callees, id)
			}
		}
		if s.cpres != nil {
			elsewhere, _ := s.cpres.groupMembers(me.ID, conv.ID) // none when Redis fails: this node's members ring
			for id := range elsewhere {
				if !slices.Contains(callees, id) {
					callees = append(callees, id)
				}
			}
		}
		slices.Sort(callees)
	default:
		return "", "", nil, proto.BadRequest("call: room conversations are joined, not rung")
	}
	return conv.ID, conv.Kind, callees, nil
}

// mintCallToken issues the token for a fresh call room: publish,
// subscribe and chat, short-lived because the client joins with it at
// once.
func (s *Server) mintCallToken(identity, name, room string) (string, error) {
	return s.keys.Issue(s.keys.DefaultKeyID(), auth.Claims{
		Identity: identity, Name: name, Room: room,
		Grants: auth.Grants{Publish: true, Subscribe: true, Chat: true},
	}, s.cfg.CallTokenTTL)
}

// storeCallRecords writes missed and declined entries into the direct
// conversation of caller and callee and pushes each like any message. It
// runs without locks because it waits for the database.
func (s *Server) storeCallRecords(records []callRecord) {
	for _, r := range records {
		ctx, cancel := s.chatCtx()
		err := s.storeCallRecord(ctx, r)
		cancel()
		if err != nil {
			s.log.Error("recording call outcome", "call", r.callID, "outcome", string(r.outcome), "err", err)
		}
	}
}

func (s *Server) storeCallRecord(ctx context.Context, r callRecord) error {
	conv, err := s.chat.Direct(ctx, r.caller, r.callee)
	if err != nil {
		return err
	}
	ack, err := s.chat.RecordCall(ctx, chat.CallRecord{CallID: r.callID, Caller: r.caller, Callee: r.callee, Outcome: r.outcome})
	if err != nil {
		return err
	}
	s.announceConversation(conv, []string{r.caller.ID, r.callee.ID}, nil)
	if !ack.Duplicate {
		s.pushMessage(chat.Message{
			ServerID: ack.ServerID, ConversationID: conv.ID, Seq: ack.Seq, ClientMsgID: ack.ClientMsgID,
			Sender: r.caller, Kind: r.outcome, CreatedAt: ack.CreatedAt,
		}, nil)
	}
	return nil
}
