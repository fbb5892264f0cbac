package proto

// Raised hands, asking to unmute and reactions (docs/protocol.md,
// Hands and reactions).

// Client message types.
const (
	// TypeHand raises or lowers the sender's own hand.
	TypeHand = "hand"
	// TypeModLowerHand: a moderator lowers someone's hand.
	TypeModLowerHand = "mod_lower_hand"
	// TypeAskUnmute: a participant a moderator muted asks to speak; the
	// server's "unmute_asked" answers it and tells the moderators.
	TypeAskUnmute = "ask_unmute"
	// TypeReaction sends an emoji to the room; also the server's event.
	TypeReaction = "reaction"
)

// TypeUnmuteAsked is the server's message naming who asks to unmute.
const TypeUnmuteAsked = "unmute_asked"

// Reactions lists the emoji a "reaction" may carry.
func Reactions() []string {
	return []string{"👍", "👏", "😂", "😮", "❤️", "🎉"}
}

// HandBody is the body of "hand".
type HandBody struct {
	Raised *bool `json:"raised"`
}

// Validate requires raised.
func (b *HandBody) Validate(typ string) *Error {
	if b.Raised == nil {
		return BadRequest("%s: raised (true or false) is required", typ)
	}
	return nil
}

// ReactionBody is the client's "reaction".
type ReactionBody struct {
	Emoji string `json:"emoji"`
}

// Validate accepts the emoji of Reactions only.
func (b *ReactionBody) Validate(typ string) *Error {
	for _, e := range Reactions() {
		if b.Emoji == e {
			return nil
		}
	}
	return BadRequest("%s: emoji must be one of 👍 👏 😂 😮 ❤️ 🎉", typ)
}

// ReactionEvent is the body of the server's "reaction": who reacted.
type ReactionEvent struct {
	SID      string `json:"sid"`
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Emoji    string `json:"emoji"`
}

// UnmuteAskedBody is the body of "unmute_asked": sent to the room's
// moderators, and to the asker in answer to its "ask_unmute".
type UnmuteAskedBody struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
}
