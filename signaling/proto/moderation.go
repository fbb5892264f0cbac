package proto

// Moderation messages (docs/protocol.md, Moderation).

// Client message types a moderator sends.
const (
	TypeLobbyAdmit     = "lobby_admit"
	TypeLobbyDeny      = "lobby_deny"
	TypeLobbyAdmitAll  = "lobby_admit_all"
	TypeRoomSettings   = "room_settings" // also the server's push
	TypeModMute        = "mod_mute"
	TypeModMuteAll     = "mod_mute_all"
	TypeModAllowUnmute = "mod_allow_unmute"
	TypeModRemove      = "mod_remove"
	TypeModRole        = "mod_role"
	TypeEndMeeting     = "end_meeting"
)

// Server message types of moderation.
const (
	// TypeLobby tells a joiner waiting in the lobby how it stands.
	TypeLobby = "lobby"
	// TypeLobbyKnock tells moderators someone waits.
	TypeLobbyKnock = "lobby_knock"
	// TypeLobbyLeft tells moderators an entry left the lobby.
	TypeLobbyLeft = "lobby_left"
	// TypeModerated tells a participant what a moderator did to it.
	TypeModerated = "moderated"
)

// Lobby statuses ("lobby" status, "lobby_left" reason).
const (
	LobbyWaiting  = "waiting"
	LobbyAdmitted = "admitted"
	LobbyDenied   = "denied"
	LobbyExpired  = "expired"
	LobbyGone     = "left"
	LobbyEnded    = "ended"
)

// Moderation error code and bye reason.
const (
	// CodeBanned refuses a join of an identity banned from the meeting.
	CodeBanned = "banned"
	// ByeEnded: a moderator ended the meeting for everyone.
	ByeEnded = "ended"
	// ByeDenied: a moderator refused the joiner from the lobby.
	ByeDenied = "denied"
)

// Sources a moderator can mute ("mod_mute" source).
const (
	ModSourceMicrophone = "microphone"
	ModSourceCamera     = "camera"
	ModSourceScreen     = "screen"
)

// Values of "who may" settings.
const (
	WhoEveryone   = "everyone"
	WhoModerators = "moderators"
)

// MaxLobbyIDBytes bounds a lobby entry id.
const MaxLobbyIDBytes = 64

// maxRoomCap bounds maxParticipants in room_settings.
const maxRoomCap = 10_000

// LobbyRefBody is the body of "lobby_admit" and "lobby_deny".
type LobbyRefBody struct {
	LobbyID string `json:"lobbyId"`
}

// Validate checks the id's shape: [A-Za-z0-9_-], 1 to 64 bytes.
func (b *LobbyRefBody) Validate(typ string) *Error {
	if b.LobbyID == "" || len(b.LobbyID) > MaxLobbyIDBytes {
		return BadRequest("%s: lobbyId must be 1 to %d bytes", typ, MaxLobbyIDBytes)
	}
	for _, r := range b.LobbyID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return BadRequest("%s: lobbyId has a character other than letters, digits, _ and -", typ)
		}
	}
	return nil
}

// RoomSettingsBody is the client's "room_settings": the settings to
// change (absent fields keep their value).
type RoomSettingsBody struct {
	Lobby                *bool   `json:"lobby,omitempty"`
	Locked               *bool   `json:"locked,omitempty"`
	ScreenShare          *string `json:"screenShare,omitempty"`
	Chat                 *string `json:"chat,omitempty"`
	MaxParticipants      *int    `json:"maxParticipants,omitempty"`
	ModeratorsUnmuteOnly *bool   `json:"moderatorsUnmuteOnly,omitempty"`
}

// Validate requires at least one field and checks each.
func (b *RoomSettingsBody) Validate(typ string) *Error {
	if *b == (RoomSettingsBody{}) {
		return BadRequest("%s: name at least one setting", typ)
	}
	for _, w := range []*string{b.ScreenShare, b.Chat} {
		if w != nil && *w != WhoEveryone && *w != WhoModerators {
			return BadRequest("%s: screenShare and chat must be everyone or moderators", typ)
		}
	}
	if b.MaxParticipants != nil && (*b.MaxParticipants < 0 || *b.MaxParticipants > maxRoomCap) {
		return BadRequest("%s: maxParticipants must be 0 to %d", typ, maxRoomCap)
	}
	return nil
}

// RoomSettingsView is a room's settings: the server's "room_settings",
// "joined"'s settings and the admin API's.
type RoomSettingsView struct {
	Lobby                bool   `json:"lobby"`
	Locked               bool   `json:"locked"`
	ScreenShare          string `json:"screenShare"`
	Chat                 string `json:"chat"`
	MaxParticipants      int    `json:"maxParticipants"`
	ModeratorsUnmuteOnly bool   `json:"moderatorsUnmuteOnly"`
}

// RoomSettingsPush is the body of the server's "room_settings".
type RoomSettingsPush struct {
	Settings RoomSettingsView `json:"settings"`
	By       IdentityView     `json:"by"`
}

// ModTargetBody is the body of "mod_allow_unmute" and "mod_lower_hand".
type ModTargetBody struct {
	Identity string `json:"identity"`
}

// Validate checks the identity.
func (b *ModTargetBody) Validate(typ string) *Error {
	return check(typ).identity("identity", b.Identity).err
}

// ModMuteBody is the body of "mod_mute".
type ModMuteBody struct {
	Identity string `json:"identity"`
	Source   string `json:"source"`
}

// Validate checks the identity and the source.
func (b *ModMuteBody) Validate(typ string) *Error {
	switch b.Source {
	case ModSourceMicrophone, ModSourceCamera, ModSourceScreen:
	default:
		return BadRequest("%s: source must be microphone, camera or screen", typ)
	}
	return check(typ).identity("identity", b.Identity).err
}

// ModRemoveBody is the body of "mod_remove".
type ModRemoveBody struct {
	Identity string `json:"identity"`
	Ban      bool   `json:"ban,omitempty"`
}

// Validate checks the identity.
func (b *ModRemoveBody) Validate(typ string) *Error {
	return check(typ).identity("identity", b.Identity).err
}

// ModRoleBody is the body of "mod_role".
type ModRoleBody struct {
	Identity  string `json:"identity"`
	Moderator *bool  `json:"moderator"`
}

// Validate checks the identity and requires moderator.
func (b *ModRoleBody) Validate(typ string) *Error {
	if b.Moderator == nil {
		return BadRequest("%s: moderator is required", typ)
	}
	return check(typ).identity("identity", b.Identity).err
}

// LobbyBody is the body of "lobby", sent to a joiner in the lobby.
type LobbyBody struct {
	Status      string `json:"status"`
	LobbyID     string `json:"lobbyId,omitempty"`
	ExpiresInMs int64  `json:"expiresInMs,omitempty"`
}

// LobbyKnockBody is the body of "lobby_knock".
type LobbyKnockBody struct {
	LobbyID   string `json:"lobbyId"`
	Identity  string `json:"identity"`
	Name      string `json:"name"`
	ExpiresAt int64  `json:"expiresAt"` // Unix milliseconds
}

// LobbyLeftBody is the body of "lobby_left".
type LobbyLeftBody struct {
	LobbyID  string `json:"lobbyId"`
	Identity string `json:"identity"`
	Reason   string `json:"reason"`
}

// ModeratedBody is the body of "moderated": what a moderator (By) did
// to the participant receiving it.
type ModeratedBody struct {
	Action    string       `json:"action"`
	By        IdentityView `json:"by"`
	Source    string       `json:"source,omitempty"`
	Ban       bool         `json:"ban,omitempty"`
	Moderator *bool        `json:"moderator,omitempty"`
}
