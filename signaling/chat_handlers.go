package signaling

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/signaling/proto"
)

// notMember is the one answer about a conversation the identity is not
// a member of, whether or not it exists: its message names neither the
// conversation nor anything the store knows about it.
func notMember(op string) *proto.Error {
	return &proto.Error{Code: proto.CodeForbidden, Message: op + ": not a member of this conversation"}
}

// chatError maps a chat service error to the protocol's error codes. The
// message keeps the service's explanation (it never carries secrets),
// except that not being a member is always answered the same way.
func (s *Server) chatError(op string, err error) *proto.Error {
	code := proto.CodeInternal
	switch {
	case errors.Is(err, chat.ErrNotMember):
		return notMember(op)
	case errors.Is(err, chat.ErrTooLarge):
		code = proto.CodeTooLarge
	case errors.Is(err, chat.ErrInvalid):
		code = proto.CodeBadRequest
	case errors.Is(err, chat.ErrForbidden):
		code = proto.CodeForbidden
	case errors.Is(err, chat.ErrNotFound):
		code = proto.CodeNotFound
	case errors.Is(err, chat.ErrConflict):
		code = proto.CodeConflict
	}
	if code == proto.CodeInternal {
		s.log.Error("chat failure", "op", op, "err", err)
		return &proto.Error{Code: proto.CodeInternal, Message: op + " failed; retry later"}
	}
	return &proto.Error{Code: code, Message: op + ": " + proto.TrimChatErr(err)}
}

func (c *chatSession) handleChatSend(reqID string, b *proto.ChatSendBody) *proto.Error {
	ev := chat.Message{ConversationID: b.ConversationID, Kind: chat.EventText, Text: b.Text}
	return c.storeEvent(reqID, "chat_send", ev, func(ctx context.Context) (chat.Ack, error) {
		return c.s.chat.Send(ctx, c.chatIdentity(), b.ConversationID, b.ClientMsgID, b.Text)
	})
}

func (c *chatSession) handleChatEdit(reqID string, b *proto.ChatEditBody) *proto.Error {
	ev := chat.Message{ConversationID: b.ConversationID, Kind: chat.EventEdit, Text: b.Text, TargetSeq: b.TargetSeq}
	return c.storeEvent(reqID, "chat_edit", ev, func(ctx context.Context) (chat.Ack, error) {
		return c.s.chat.Edit(ctx, c.chatIdentity(), b.ConversationID, b.ClientMsgID, b.TargetSeq, b.Text)
	})
}

func (c *chatSession) handleChatDelete(reqID string, b *proto.ChatDeleteBody) *proto.Error {
	ev := chat.Message{ConversationID: b.ConversationID, Kind: chat.EventDelete, TargetSeq: b.TargetSeq}
	return c.storeEvent(reqID, "chat_delete", ev, func(ctx context.Context) (chat.Ack, error) {
		return c.s.chat.Delete(ctx, c.chatIdentity(), b.ConversationID, b.ClientMsgID, b.TargetSeq)
	})
}

func (c *chatSession) handleChatReact(reqID string, b *proto.ChatReactBody) *proto.Error {
	kind := chat.EventReact
	if b.Remove {
		kind = chat.EventUnreact
	}
	ev := chat.Message{ConversationID: b.ConversationID, Kind: kind, Text: b.Emoji, TargetSeq: b.TargetSeq}
	return c.storeEvent(reqID, "chat_react", ev, func(ctx context.Context) (chat.Ack, error) {
		return c.s.chat.React(ctx, c.chatIdentity(), b.ConversationID, b.ClientMsgID, b.TargetSeq, b.Emoji, !b.Remove)
	})
}

// storeEvent runs one chat write under the write rate limit and, once the
// store has it (durably), acks it to the sender and pushes it (stored).
// ev carries what the request said; the store's ack fills in the rest.
func (c *chatSession) storeEvent(reqID, op string, ev chat.Message, write func(context.Context) (chat.Ack, error)) *proto.Error {
	ctx, cancel := c.s.chatCtx()
	ack, err := write(ctx)
	cancel()
	if err != nil {
		if ev.TargetSeq == 0 && errors.Is(err, chat.ErrNotFound) {
			// Without a target event, only the conversation can be
			// missing: answer as for any conversation one is not in.
			return notMember(op)
		}
		return c.s.chatError(op, err)
	}
	ev.ServerID, ev.Seq, ev.ClientMsgID, ev.CreatedAt = ack.ServerID, ack.Seq, ack.ClientMsgID, ack.CreatedAt
	ev.Sender = c.chatIdentity()
	c.stored(reqID, ev, ack.Duplicate)
	return nil
}

// stored acks a durably stored event to its sender and pushes it to every
// other session of every member. A duplicate (a retry) is only acked: the
// original was pushed when it was stored, and members that missed that
// push find it by seq (range or sync).
func (c *chatSession) stored(reqID string, m chat.Message, duplicate bool) {
	if h := c.s.hooks.afterChatSend; h != nil {
		h(c)
	}
	c.enqueue(proto.Encode(proto.TypeChatAck, reqID, proto.ChatAckBody{
		ConversationID: m.ConversationID, ClientMsgID: m.ClientMsgID, Seq: m.Seq,
		ServerID: m.ServerID, CreatedAt: proto.Millis(m.CreatedAt), Duplicate: duplicate,
	}))
	if duplicate {
		return
	}
	c.s.pushMessage(m, c)
}

// pushMessage sends a stored event to every connected member's sessions
// except skip.
func (s *Server) pushMessage(m chat.Message, skip *chatSession) {
	n := s.hub.pushOrdered(m.ConversationID, m.Seq, proto.Encode(proto.TypeMessage, "", proto.NewMessageView(m)), skip)
	s.metrics.chatPushes.Add(float64(n))
}

// pageLimit checks a client's page size and returns the one to use:
// chat_page_max when the client gave none.
func (c *chatSession) pageLimit(typ string, limit int) (int, *proto.Error) {
	if limit > c.s.cfg.ChatPageMax {
		return 0, proto.BadRequest("%s: limit %d is above chat_page_max (%d)", typ, limit, c.s.cfg.ChatPageMax)
	}
	if limit == 0 {
		limit = c.s.cfg.ChatPageMax
	}
	return limit, nil
}

func (c *chatSession) handleChatSync(reqID string, b *proto.ChatSyncBody) *proto.Error {
	limit, perr := c.pageLimit(proto.TypeChatSync, b.Limit)
	if perr != nil {
		return perr
	}
	ctx, cancel := c.s.chatCtx()
	res, err := c.s.chat.CatchUp(ctx, c.identity(), b.LastSeqs, limit)
	cancel()
	if err != nil {
		return c.s.chatError("chat_sync", err)
	}
	out := proto.ChatSyncedBody{Conversations: make([]proto.SyncedConversation, 0, len(res.Conversations)), Gone: res.Gone}
	if out.Gone == nil {
		out.Gone = []string{}
	}
	for _, cu := range res.Conversations {
		// The identity may have joined conversations since this session
		// indexed them (a group made on another node, a room joined from
		// another device): index them now so pushes arrive.
		c.s.hub.addMembers(cu.Summary.Conversation.ID, cu.Summary.Conversation.Kind, c.identity())
		out.Conversations = append(out.Conversations, proto.SyncedConversation{
			Conversation: proto.NewConversationView(cu.Summary, c.identity()),
			Messages:     proto.NewMessageViews(cu.Messages),
			More:         cu.More,
		})
	}
	c.enqueue(proto.Encode(proto.TypeChatSynced, reqID, out))
	return nil
}

func (c *chatSession) handleChatHistory(reqID string, b *proto.ChatHistoryBody) *proto.Error {
	return c.sendPage(reqID, proto.TypeChatHistory, b.ConversationID, b.Limit, func(ctx context.Context, limit int) (chat.Page, error) {
		return c.s.chat.History(ctx, c.identity(), b.ConversationID, b.BeforeSeq, limit)
	})
}

func (c *chatSession) handleChatRange(reqID string, b *proto.ChatRangeBody) *proto.Error {
	return c.sendPage(reqID, proto.TypeChatRange, b.ConversationID, b.Limit, func(ctx context.Context, limit int) (chat.Page, error) {
		return c.s.chat.Range(ctx, c.identity(), b.ConversationID, b.AfterSeq, limit)
	})
}

// sendPage answers a history or range request with one page of events.
func (c *chatSession) sendPage(reqID, typ, convID string, limit int, fetch func(context.Context, int) (chat.Page, error)) *proto.Error {
	limit, perr := c.pageLimit(typ, limit)
	if perr != nil {
		return perr
	}
	ctx, cancel := c.s.chatCtx()
	page, err := fetch(ctx, limit)
	cancel()
	if err != nil {
		return c.s.chatError(typ, err)
	}
	c.enqueue(proto.Encode(proto.TypeChatPage, reqID, proto.ChatPageBody{ConversationID: convID, Messages: proto.NewMessageViews(page.Messages), More: page.More}))
	return nil
}

// handleChatReceipt raises the identity's watermarks. The reply carries
// the resulting marks; when a mark moved, the other members of a direct
// or group conversation (the senders) and the identity's other devices
// get a "chat_receipt". In room conversations only the identity's own
// devices are told: per-member read state of a broadcast room would cost
// every member a message per receipt of every other member.
func (c *chatSession) handleChatReceipt(reqID string, b *proto.ChatReceiptBody) *proto.Error {
	ctx, cancel := c.s.chatCtx()
	defer cancel()
	// Membership first: the store checks a mark against the
	// conversation's length before it checks who asks, and a non-member
	// must learn neither the length nor whether the conversation exists.
	if perr := c.member(ctx, proto.TypeChatReceipt, b.ConversationID); perr != nil {
		return perr
	}
	var wm chat.Watermarks
	var err error
	if b.Read > 0 {
		wm, err = c.s.chat.MarkRead(ctx, c.identity(), b.ConversationID, b.Read)
	}
	if err == nil && b.Delivered > 0 && b.Delivered > wm.Delivered {
		wm, err = c.s.chat.MarkDelivered(ctx, c.identity(), b.ConversationID, b.Delivered)
	}
	if err != nil {
		return c.s.chatError("chat_receipt", err)
	}
	body := proto.WatermarksBody{ConversationID: b.ConversationID, Identity: c.identity(), Delivered: wm.Delivered, Read: wm.Read}
	c.enqueue(proto.Encode(proto.TypeChatWatermarks, reqID, body))
	// Marks only grow, so a result equal to what was asked for is the
	// one case where this receipt may have moved them.
	moved := b.Read > 0 && wm.Read == b.Read || b.Delivered > 0 && wm.Delivered == b.Delivered
	if !moved {
		return nil
	}
	msg := proto.Encode(proto.TypeChatReceipt, "", body)
	if kind := c.s.hub.convKind(b.ConversationID); kind == chat.KindDirect || kind == chat.KindGroup {
		c.s.hub.pushConv(b.ConversationID, msg, c, "")
	} else {
		c.s.hub.pushIdentity(c.identity(), msg, c)
	}
	return nil
}

// member checks that the identity belongs to conversation convID: the
// hub's index knows the conversations of connected identities, the store
// the rest (one made on another node a moment ago).
func (c *chatSession) member(ctx context.Context, op, convID string) *proto.Error {
	if c.s.hub.isMember(c.identity(), convID) {
		return nil
	}
	if _, err := c.s.chat.ConversationOf(ctx, c.identity(), convID); err != nil {
		return c.s.chatError(op, err)
	}
	return nil
}

// handleTyping forwards a typing notice to the other members' sessions.
// It is ephemeral: no seq, no storage, nothing on reconnect.
func (c *chatSession) handleTyping(b *proto.TypingBody) *proto.Error {
	if !c.typing.Allow() {
		return &proto.Error{Code: proto.CodeRateLimited, Message: "typing rate limit exceeded (typing_rate_per_second)"}
	}
	if !c.s.hub.isMember(c.identity(), b.ConversationID) {
		return &proto.Error{Code: proto.CodeForbidden, Message: "typing: not a member of this conversation"}
	}
	msg := proto.Encode(proto.TypeTyping, "", proto.TypingEventBody{ConversationID: b.ConversationID, Identity: c.identity(), Name: c.displayName()})
	c.s.hub.pushConv(b.ConversationID, msg, c, c.identity())
	return nil
}

// handleChatDirect opens (or finds) the direct conversation with another
// identity. The peer's sessions learn of it with a "conversation" push.
func (c *chatSession) handleChatDirect(reqID string, b *proto.ChatDirectBody) *proto.Error {
	if b.Identity == c.identity() {
		return proto.BadRequest("chat_direct: cannot open a direct conversation with yourself")
	}
	peer := chat.Identity{ID: b.Identity, Name: c.s.hub.displayName(b.Identity)}
	ctx, cancel := c.s.chatCtx()
	defer cancel()
	if perr := c.requireKnown(ctx, "chat_direct", b.Identity); perr != nil {
		return perr
	}
	conv, err := c.s.chat.Direct(ctx, c.chatIdentity(), peer)
	if err != nil {
		return c.s.chatError("chat_direct", err)
	}
	c.s.announceConversation(conv, []string{c.identity(), peer.ID}, c)
	return c.replyConversation(reqID, conv)
}

// requireKnown refuses to address an identity nobody has used here
// (known.go), so a message never goes to a made-up or mistyped identity.
func (c *chatSession) requireKnown(ctx context.Context, op, id string) *proto.Error {
	ok, err := c.s.identityKnown(ctx, id)
	if err != nil {
		return c.s.chatError(op, err)
	}
	if !ok {
		return &proto.Error{Code: proto.CodeNotFound, Message: fmt.Sprintf("No one called %q has used this server yet: check the name, or ask them to open Parley once.", id)}
	}
	return nil
}

// handleChatGroup creates a group with the sender as admin.
func (c *chatSession) handleChatGroup(reqID string, b *proto.ChatGroupBody) *proto.Error {
	members := make([]chat.Identity, 0, len(b.Members))
	ids := []string{c.identity()}
	seen := map[string]bool{c.identity(): true}
	for _, m := range b.Members {
		if seen[m] {
			continue
		}
		seen[m] = true
		members = append(members, chat.Identity{ID: m, Name: c.s.hub.displayName(m)})
		ids = append(ids, m)
	}
	if len(members) == 0 {
		return proto.BadRequest("chat_group: members must name someone other than yourself")
	}
	ctx, cancel := c.s.chatCtx()
	defer cancel()
	for _, m := range members {
		if perr := c.requireKnown(ctx, "chat_group", m.ID); perr != nil {
			return perr
		}
	}
	conv, err := c.s.chat.CreateGroup(ctx, c.chatIdentity(), b.Title, members)
	if err != nil {
		return c.s.chatError("chat_group", err)
	}
	c.s.announceConversation(conv, ids, c)
	return c.replyConversation(reqID, conv)
}

// maxPresenceIntroductions bounds the presence messages sent when a new
// conversation makes people contacts (members x newly indexed members).
const maxPresenceIntroductions = 1024

// announceConversation indexes conv for its connected members and tells
// those who did not know it yet (except skip, which gets a reply), plus
// the presence of the connected members to the newly indexed ones.
func (s *Server) announceConversation(conv chat.Conversation, members []string, skip *chatSession) {
	if s.cpres != nil {
		s.cpres.noteGroup(conv, members) // a new group's members, listed in Redis (presence_cluster.go)
	}
	s.hub.relayConversation(conv, members) // hub_relay.go
	added := s.hub.addMembers(conv.ID, conv.Kind, members...)
	if len(added) == 0 {
		return
	}
	for _, id := range added {
		view := proto.NewConversationView(chat.ConversationSummary{Conversation: conv, LastActivity: conv.CreatedAt}, id)
		s.hub.pushIdentity(id, proto.Encode(proto.TypeConversation, "", proto.ConversationBody{Conversation: view}), skip)
	}
	// In cluster mode the members connected to other nodes learn of the
	// conversation there (relayConversation) but not of each other's
	// presence: they are told from here, through the relay.
	told := added
	if s.cpres != nil {
		told = members
	}
	if conv.Kind == chat.KindRoom || len(members)*len(told) > maxPresenceIntroductions {
		return
	}
	status := s.hub.status
	if s.cpres != nil { // cluster mode: the merged view, members elsewhere count
		states := s.cpres.read(members)
		status = func(id string) string {
			if st, ok := states[id]; ok {
				return st.Status
			}
			return proto.PresenceOffline
		}
	}
	for _, a := range members {
		st := status(a)
		if st == proto.PresenceOffline {
			continue
		}
		for _, b := range told {
			if a != b {
				s.hub.pushIdentity(b, proto.Encode(proto.TypePresence, "", proto.PresenceBody{Identity: a, Status: st}), nil)
			}
		}
	}
}

// replyConversation answers with the requester's view (watermarks and
// unread count included) of conv.
func (c *chatSession) replyConversation(reqID string, conv chat.Conversation) *proto.Error {
	ctx, cancel := c.s.chatCtx()
	defer cancel()
	sum, err := c.s.chat.Summary(ctx, c.identity(), conv.ID)
	switch {
	case errors.Is(err, chat.ErrNotMember):
		sum = chat.ConversationSummary{Conversation: conv, LastActivity: conv.CreatedAt}
	case err != nil:
		return c.s.chatError("conversation", err)
	}
	view := proto.NewConversationView(sum, c.identity())
	c.enqueue(proto.Encode(proto.TypeConversation, reqID, proto.ConversationBody{Conversation: view}))
	return nil
}
