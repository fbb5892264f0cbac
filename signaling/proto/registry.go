package proto

import (
	"maps"
	"slices"
)

// Body is a client message body. Validate checks what the type's
// section of docs/protocol.md requires of it (typ names the message in
// errors, since some bodies serve several types) and may normalise
// fields in place, such as the letter case of a UUID.
type Body interface {
	Validate(typ string) *Error
}

// Need is what a connection must have before a message is handled. The
// server checks these in one place, in the order listed, so a handler
// only runs once its preconditions hold.
type Need uint8

const (
	// NeedJoined: the connection has been answered "joined". Every type
	// but join needs it (error not_joined, connection closed).
	NeedJoined Need = 1 << iota
	// NeedChat: chat is enabled and the token has the chat grant (errors
	// unavailable and forbidden).
	NeedChat
	// NeedWrite: the message writes to the chat store, so it spends a
	// token of the connection's chat write bucket (error rate_limited).
	NeedWrite
	// NeedCall: the connection is a call session with media (error
	// not_in_call on a messaging session).
	NeedCall
	// NeedPublish: the token has the publish grant (error forbidden).
	NeedPublish
)

// Spec describes one client message type.
type Spec struct {
	// New returns an empty body to decode into; nil for types without a
	// body (anything sent as data is ignored).
	New func() Body
	// Needs lists the preconditions the server checks before handling.
	Needs Need
}

// Has reports whether s needs all of n.
func (s Spec) Has(n Need) bool { return s.Needs&n == n }

func body[T any, P interface {
	*T
	Body
}]() func() Body {
	return func() Body { return P(new(T)) }
}

// client is every message a client may send. Adding a message type is
// one entry here plus its handler in the server.
//
//nolint:gochecknoglobals // a read-only table
var client = map[string]Spec{
	TypeJoin:       {New: body[JoinBody]()},
	TypePublish:    {New: body[PublishBody](), Needs: NeedJoined | NeedCall | NeedPublish},
	TypeUnpublish:  {New: body[TrackRef](), Needs: NeedJoined | NeedCall | NeedPublish},
	TypeOffer:      {New: body[SDPBody](), Needs: NeedJoined | NeedCall | NeedPublish},
	TypeAnswer:     {New: body[SDPBody](), Needs: NeedJoined | NeedCall},
	TypeCandidate:  {New: body[CandidateBody](), Needs: NeedJoined | NeedCall},
	TypeICERestart: {Needs: NeedJoined | NeedCall},
	TypeMute:       {New: body[MuteBody](), Needs: NeedJoined | NeedCall | NeedPublish},
	TypeVideoView:  {New: body[VideoViewBody](), Needs: NeedJoined | NeedCall},
	TypePong:       {New: body[PingBody](), Needs: NeedJoined},
	TypeLeave:      {Needs: NeedJoined},

	TypeChatSend:    {New: body[ChatSendBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeChatEdit:    {New: body[ChatEditBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeChatDelete:  {New: body[ChatDeleteBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeChatReact:   {New: body[ChatReactBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeChatSync:    {New: body[ChatSyncBody](), Needs: NeedJoined | NeedChat},
	TypeChatHistory: {New: body[ChatHistoryBody](), Needs: NeedJoined | NeedChat},
	TypeChatRange:   {New: body[ChatRangeBody](), Needs: NeedJoined | NeedChat},
	TypeChatReceipt: {New: body[ChatReceiptBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	// chat_direct, chat_group and call write to the store too (a
	// conversation, a missed-call entry for an offline callee).
	TypeChatDirect:  {New: body[ChatDirectBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeChatGroup:   {New: body[ChatGroupBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeTyping:      {New: body[TypingBody](), Needs: NeedJoined | NeedChat},
	TypeCall:        {New: body[CallBody](), Needs: NeedJoined | NeedChat | NeedWrite},
	TypeCallAccept:  {New: body[CallRefBody](), Needs: NeedJoined | NeedChat},
	TypeCallDecline: {New: body[CallRefBody](), Needs: NeedJoined | NeedChat},
	TypeCallCancel:  {New: body[CallRefBody](), Needs: NeedJoined | NeedChat},

	// Moderation: the handlers check the moderator role themselves.
	TypeLobbyAdmit:     {New: body[LobbyRefBody](), Needs: NeedJoined | NeedCall},
	TypeLobbyDeny:      {New: body[LobbyRefBody](), Needs: NeedJoined | NeedCall},
	TypeLobbyAdmitAll:  {Needs: NeedJoined | NeedCall},
	TypeRoomSettings:   {New: body[RoomSettingsBody](), Needs: NeedJoined | NeedCall},
	TypeModMute:        {New: body[ModMuteBody](), Needs: NeedJoined | NeedCall},
	TypeModMuteAll:     {Needs: NeedJoined | NeedCall},
	TypeModAllowUnmute: {New: body[ModTargetBody](), Needs: NeedJoined | NeedCall},
	TypeModRemove:      {New: body[ModRemoveBody](), Needs: NeedJoined | NeedCall},
	TypeModRole:        {New: body[ModRoleBody](), Needs: NeedJoined | NeedCall},
	TypeEndMeeting:     {Needs: NeedJoined | NeedCall},
	TypeModLowerHand:   {New: body[ModTargetBody](), Needs: NeedJoined | NeedCall},

	// Hands and reactions: rate-limited per session by their handlers.
	TypeHand:      {New: body[HandBody](), Needs: NeedJoined | NeedCall},
	TypeAskUnmute: {Needs: NeedJoined | NeedCall},
	TypeReaction:  {New: body[ReactionBody](), Needs: NeedJoined | NeedCall},

	// Recording: the handlers check the moderator role themselves.
	TypeRecordingStart: {Needs: NeedJoined | NeedCall},
	TypeRecordingStop:  {Needs: NeedJoined | NeedCall},

	// Client statistics: rate-limited per call session by the handler.
	TypeClientStats: {New: body[ClientStatsBody](), Needs: NeedJoined | NeedCall},
	// Restream: the handlers check the moderator role themselves.
	TypeRestreamStart: {New: body[RestreamStartBody](), Needs: NeedJoined | NeedCall},
	TypeRestreamStop:  {Needs: NeedJoined | NeedCall},
}

// server is every message a server may send, with the Go type of its
// body, for clients that decode them (nil: no body worth decoding).
//
//nolint:gochecknoglobals // a read-only table
var server = map[string]func() any{
	TypeJoined:             func() any { return new(JoinedBody) },
	TypePublished:          func() any { return new(PublishBody) },
	TypeOffer:              func() any { return new(SDPBody) },
	TypeAnswer:             func() any { return new(SDPBody) },
	TypeCandidate:          func() any { return new(CandidateBody) },
	TypeParticipantJoined:  func() any { return new(ParticipantBody) },
	TypeParticipantUpdated: func() any { return new(ParticipantBody) },
	TypeParticipantLeft:    func() any { return new(ParticipantLeftBody) },
	TypePing:               func() any { return new(PingBody) },
	TypeMuted:              func() any { return new(MutedBody) },
	TypeSpeakers:           func() any { return new(SpeakersBody) },
	TypeActiveLayers:       func() any { return new(ActiveLayersBody) },
	TypeConnectionQuality:  func() any { return new(ConnectionQualityBody) },
	TypeToken:              func() any { return new(TokenBody) },
	TypeBye:                func() any { return new(ByeBody) },
	TypeError:              func() any { return new(ErrorBody) },

	TypeChatAck:        func() any { return new(ChatAckBody) },
	TypeMessage:        func() any { return new(MessageView) },
	TypeChatSynced:     func() any { return new(ChatSyncedBody) },
	TypeChatPage:       func() any { return new(ChatPageBody) },
	TypeChatWatermarks: func() any { return new(WatermarksBody) },
	TypeChatReceipt:    func() any { return new(WatermarksBody) },
	TypeTyping:         func() any { return new(TypingEventBody) },
	TypeConversation:   func() any { return new(ConversationBody) },
	TypePresence:       func() any { return new(PresenceBody) },
	TypeCallRinging:    func() any { return new(CallRingingBody) },
	TypeRing:           func() any { return new(RingBody) },
	TypeCallAccepted:   func() any { return new(CallAcceptedBody) },
	TypeCallEnded:      func() any { return new(CallEndedBody) },

	TypeLobby:        func() any { return new(LobbyBody) },
	TypeLobbyKnock:   func() any { return new(LobbyKnockBody) },
	TypeLobbyLeft:    func() any { return new(LobbyLeftBody) },
	TypeModerated:    func() any { return new(ModeratedBody) },
	TypeRoomSettings: func() any { return new(RoomSettingsPush) },
	TypeUnmuteAsked:  func() any { return new(UnmuteAskedBody) },
	TypeReaction:     func() any { return new(ReactionEvent) },
	TypeRecording:    func() any { return new(RecordingBody) },
	TypeRestream:     func() any { return new(RestreamBody) },
}

// Lookup returns the Spec of a client message type.
func Lookup(typ string) (Spec, bool) {
	s, ok := client[typ]
	return s, ok
}

// ClientTypes lists every client message type, sorted. It is also the
// label set of the server's per-type message counter.
func ClientTypes() []string { return slices.Sorted(maps.Keys(client)) }

// ServerTypes lists every server message type, sorted.
func ServerTypes() []string { return slices.Sorted(maps.Keys(server)) }

// NewServerBody returns an empty body for a server message type, or nil
// if typ is not one.
func NewServerBody(typ string) any {
	if f := server[typ]; f != nil {
		return f()
	}
	return nil
}
