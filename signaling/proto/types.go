package proto

// Client message types (docs/protocol.md, Client to server).
const (
	TypeJoin       = "join"
	TypePublish    = "publish"
	TypeUnpublish  = "unpublish"
	TypeOffer      = "offer"
	TypeAnswer     = "answer"
	TypeCandidate  = "candidate"
	TypeICERestart = "ice_restart"
	TypeMute       = "mute"
	TypeVideoView  = "video_view"
	TypePong       = "pong"
	TypeLeave      = "leave"
)

// Server message types (offer, answer and candidate are shared).
const (
	TypeJoined             = "joined"
	TypePublished          = "published"
	TypeParticipantJoined  = "participant_joined"
	TypeParticipantUpdated = "participant_updated"
	TypeParticipantLeft    = "participant_left"
	TypePing               = "ping"
	TypeMuted              = "muted"
	TypeSpeakers           = "speakers"
	TypeActiveLayers       = "active_layers"
	TypeConnectionQuality  = "connection_quality"
	TypeToken              = "token"
	TypeBye                = "bye"
	TypeError              = "error"
)

// Client message types for chat, presence and call invitations
// (docs/protocol.md, Chat and Calls).
const (
	TypeChatSend    = "chat_send"
	TypeChatEdit    = "chat_edit"
	TypeChatDelete  = "chat_delete"
	TypeChatReact   = "chat_react"
	TypeChatSync    = "chat_sync"
	TypeChatHistory = "chat_history"
	TypeChatRange   = "chat_range"
	TypeChatReceipt = "chat_receipt"
	TypeChatDirect  = "chat_direct"
	TypeChatGroup   = "chat_group"
	TypeTyping      = "typing"
	TypeCall        = "call"
	TypeCallAccept  = "call_accept"
	TypeCallDecline = "call_decline"
	TypeCallCancel  = "call_cancel"
)

// Server message types for chat, presence and calls. chat_receipt and
// typing are also server pushes.
const (
	TypeChatAck        = "chat_ack"
	TypeMessage        = "message"
	TypeChatSynced     = "chat_synced"
	TypeChatPage       = "chat_page"
	TypeChatWatermarks = "chat_watermarks"
	TypeConversation   = "conversation"
	TypePresence       = "presence"
	TypeCallRinging    = "call_ringing"
	TypeRing           = "ring"
	TypeCallAccepted   = "call_accepted"
	TypeCallEnded      = "call_ended"
)

// Error codes sent in "error" messages.
const (
	CodeBadRequest        = "bad_request"
	CodeUnknownType       = "unknown_type"
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeProtocolVersion   = "protocol_version"
	CodeNotJoined         = "not_joined"
	CodeTooLarge          = "too_large"
	CodeRateLimited       = "rate_limited"
	CodeNotFound          = "not_found"
	CodeNegotiationFailed = "negotiation_failed"
	CodeRoomFull          = "room_full"
	CodeInternal          = "internal"
	// CodeUnavailable: chat is not enabled on this server.
	CodeUnavailable = "unavailable"
	// CodeConflict: a client message id was reused for different content.
	CodeConflict = "conflict"
	// CodeNotInCall: a media message on a messaging-only session.
	CodeNotInCall = "not_in_call"
	// CodeCallLimit: too many call invitations ringing at once.
	CodeCallLimit = "call_limit"
	// CodeTooManySessions: the identity has max_sessions_per_identity
	// connections already.
	CodeTooManySessions = "too_many_sessions"
	// CodeWrongNode refuses a join on a node that does not host the room
	// (cluster mode); the error's url names the node that does.
	CodeWrongNode = "wrong_node"
)

// Bye reasons.
const (
	ByeShutdown = "shutdown"
	ByeRemoved  = "removed"
	ByeReplaced = "replaced"
	ByeTimeout  = "timeout"
	ByeLeft     = "left"
	// ByeReconnect: this node is draining (cluster mode); the client
	// rejoins at once and lands on another node.
	ByeReconnect = "reconnect"
)

// Presence states (docs/protocol.md, Presence).
const (
	PresenceOnline  = "online"
	PresenceInCall  = "in_call"
	PresenceOffline = "offline"
)

// Reasons carried by "call_ended" (docs/protocol.md, Calls).
const (
	CallEndAnsweredElsewhere = "answered_elsewhere"
	CallEndDeclined          = "declined"
	CallEndDeclinedElsewhere = "declined_elsewhere"
	CallEndCancelled         = "cancelled"
	CallEndBusy              = "busy"
	CallEndOffline           = "offline"
	CallEndNoAnswer          = "no_answer"
)
