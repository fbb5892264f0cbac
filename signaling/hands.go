package signaling

import (
	"maps"
	"time"

	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/rooms/moderation"
	"github.com/parleyhq/parley/signaling/proto"
)

// Raised hands, asking to unmute and reactions (docs/protocol.md, Hands
// and reactions). Each reaches many people (the room, or its
// moderators), so each has its own budget per call session on top of
// the connection's general one.
const (
	handRate      = rate.Limit(0.5) // a hand up or down every 2 s...
	handBurst     = 4               // ...after a few quick toggles
	askUnmuteGap  = 10 * time.Second
	reactionRate  = rate.Limit(1)
	reactionBurst = 5
)

// gestures are a call session's budgets; only its reader uses them.
type gestures struct {
	hand, askUnmute, reaction *rate.Limiter
}

func newGestures() *gestures {
	return &gestures{
		hand:      rate.NewLimiter(handRate, handBurst),
		askUnmute: rate.NewLimiter(rate.Every(askUnmuteGap), 1),
		reaction:  rate.NewLimiter(reactionRate, reactionBurst),
	}
}

// The gesture handlers join the dispatch table here, as the moderation
// ones do (mod_lower_hand is one of those).
func init() {
	maps.Copy(handlers, gestureHandlers)
}

//nolint:gochecknoglobals // a read-only table, merged into handlers at init
var gestureHandlers = map[string]handler{
	proto.TypeHand: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.hand(*r.Body.(*proto.HandBody).Raised)
	},
	proto.TypeAskUnmute: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.askUnmute(r.ID)
	},
	proto.TypeReaction: func(ss *session, r proto.Request) *proto.Error {
		return ss.call.react(r.Body.(*proto.ReactionBody).Emoji)
	},
}

func rateLimited(msg string) *proto.Error {
	return &proto.Error{Code: proto.CodeRateLimited, Message: msg}
}

// hand raises or lowers the session's own hand; the room sees it in
// "participant_updated".
func (cs *callSession) hand(raised bool) *proto.Error {
	if !cs.gestures.hand.Allow() {
		return rateLimited("hand: too many changes; wait a few seconds")
	}
	cs.ss.s.dir.SetHand(cs.p, raised, time.Now())
	return nil
}

// askUnmute tells the room's moderators that a participant they muted
// under moderatorsUnmuteOnly asks to speak, and answers the asker.
func (cs *callSession) askUnmute(reqID string) *proto.Error {
	m, c := cs.ss.s.mod, cs.ss.claims
	var err error
	m.reg.Do(c.Room, func(st *moderation.Room) {
		err = st.AskUnmute(c.Identity, st.RoleOf(c.Identity, c.Grants.Moderate))
	})
	if err != nil {
		return proto.BadRequest("ask_unmute: %v", err)
	}
	if !cs.gestures.askUnmute.Allow() {
		return rateLimited("ask_unmute: the moderators were asked; ask again in 10 s")
	}
	body := proto.UnmuteAskedBody{Identity: c.Identity, Name: cs.ss.name}
	m.s.dir.SendModerators(c.Room, proto.Encode(proto.TypeUnmuteAsked, "", body))
	cs.ss.out.enqueue(proto.Encode(proto.TypeUnmuteAsked, reqID, body))
	return nil
}

// react shows an emoji from the session to the whole room, itself too.
func (cs *callSession) react(emoji string) *proto.Error {
	if !cs.gestures.reaction.Allow() {
		return rateLimited("reaction: too many; one a second")
	}
	p := cs.p
	cs.ss.s.dir.Broadcast(p.Room, proto.Encode(proto.TypeReaction, "", proto.ReactionEvent{
		SID: p.SID, Identity: p.Identity, Name: p.Name, Emoji: emoji,
	}))
	return nil
}

// lowerHand: a moderator lowers a participant's raised hand, which is
// told who did.
func (m *moderator) lowerHand(ss *session, identity string) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActLowerHand, identity)
	if perr != nil {
		return perr
	}
	if !m.s.dir.HandRaised(a.target) {
		return nil // lowered meanwhile: nothing to do or record
	}
	a.done(identity, "")
	if m.s.dir.SetHand(a.target, false, time.Time{}) {
		a.tell(a.target, proto.ModeratedBody{Action: string(moderation.ActLowerHand)})
	}
	return nil
}
