package proto

// CallBody is the body of "call": exactly one of To (an identity, a
// direct call) and ConversationID (a group or direct conversation).
type CallBody struct {
	To             string `json:"to,omitempty"`
	ConversationID string `json:"conversationId,omitempty"`
}

// Validate requires exactly one of the two.
func (b *CallBody) Validate(typ string) *Error {
	c := check(typ).badIf((b.To == "") == (b.ConversationID == ""), "give exactly one of to and conversationId")
	if b.To != "" {
		return c.identity("to", b.To).err
	}
	return c.convID(b.ConversationID).err
}

// CallRefBody is the body of "call_accept", "call_decline", "call_cancel".
type CallRefBody struct {
	CallID string `json:"callId"`
}

// Validate requires a UUID and normalises its letter case.
func (b *CallRefBody) Validate(typ string) *Error {
	return check(typ).uuid(&b.CallID, "callId must be a UUID").err
}

// CallRingingBody answers "call".
type CallRingingBody struct {
	CallID         string   `json:"callId"`
	ConversationID string   `json:"conversationId"`
	Ringing        []string `json:"ringing"`
	Busy           []string `json:"busy"`
	Offline        []string `json:"offline"`
}

// RingBody is the body of "ring".
type RingBody struct {
	CallID         string       `json:"callId"`
	Caller         IdentityView `json:"caller"`
	ConversationID string       `json:"conversationId"`
	Kind           string       `json:"kind"`
	TimeoutMs      int64        `json:"timeoutMs"`
}

// CallAcceptedBody is the body of "call_accepted".
type CallAcceptedBody struct {
	CallID         string       `json:"callId"`
	ConversationID string       `json:"conversationId"`
	Room           string       `json:"room"`
	Token          string       `json:"token"`
	Peer           IdentityView `json:"peer"`
}

// CallEndedBody is the body of "call_ended".
type CallEndedBody struct {
	CallID string `json:"callId"`
	Reason string `json:"reason"`
	// Identity names the callee a per-callee reason is about (group calls).
	Identity string `json:"identity,omitempty"`
}
