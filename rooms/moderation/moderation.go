// Package moderation is the moderation state of call rooms, as pure
// values without sockets or clocks of their own: a room's settings
// (lobby, lock, who may share screens and chat, a participant cap,
// "moderators unmute only"), its lobby with expiring entries, the
// identities banned for the rest of the meeting, the identities a
// moderator promoted or admitted, and a ring of recent moderation
// events. Authorize decides who may do what.
//
// A Room is not safe for concurrent use; the Registry holds every room's
// state under one lock and forgets a room once nobody is in it or
// waiting for it (the meeting ended), keeping only the settings an
// operator set ahead of time.
package moderation

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Who says who may do something a setting restricts.
type Who string

// The values of Who.
const (
	Everyone   Who = "everyone"
	Moderators Who = "moderators"
)

func (w Who) valid() bool { return w == Everyone || w == Moderators }

// MaxParticipantsCap bounds Settings.MaxParticipants.
const MaxParticipantsCap = 10_000

// Settings are a room's moderation settings.
type Settings struct {
	// Lobby: joiners without the moderate grant wait until a moderator
	// admits them.
	Lobby bool
	// Locked: nobody new joins, whatever their token, except through the
	// lobby (admitted by a moderator); the moderate grant still enters.
	Locked bool
	// ScreenShare and Chat say who may share a screen and write in the
	// room's conversation.
	ScreenShare Who
	Chat        Who
	// MaxParticipants caps the room below the server's own limit (0: the
	// server's limit only).
	MaxParticipants int
	// ModeratorsUnmuteOnly: a microphone a moderator muted stays muted
	// until a moderator allows its owner to unmute.
	ModeratorsUnmuteOnly bool
}

// DefaultSettings: no lobby, unlocked, everyone shares and chats.
func DefaultSettings() Settings {
	return Settings{ScreenShare: Everyone, Chat: Everyone}
}

// Patch changes some settings; nil fields keep their value.
type Patch struct {
	Lobby                *bool
	Locked               *bool
	ScreenShare          *Who
	Chat                 *Who
	MaxParticipants      *int
	ModeratorsUnmuteOnly *bool
}

// Validate checks the values a patch sets.
func (p Patch) Validate() error {
	if p.ScreenShare != nil && !p.ScreenShare.valid() {
		return errors.New("screenShare must be everyone or moderators")
	}
	if p.Chat != nil && !p.Chat.valid() {
		return errors.New("chat must be everyone or moderators")
	}
	if p.MaxParticipants != nil && (*p.MaxParticipants < 0 || *p.MaxParticipants > MaxParticipantsCap) {
		return fmt.Errorf("maxParticipants must be 0 to %d", MaxParticipantsCap)
	}
	return nil
}

// Empty reports whether the patch changes nothing.
func (p Patch) Empty() bool {
	return p == Patch{}
}

// Apply returns s with p's fields set.
func (s Settings) Apply(p Patch) Settings {
	if p.Lobby != nil {
		s.Lobby = *p.Lobby
	}
	if p.Locked != nil {
		s.Locked = *p.Locked
	}
	if p.ScreenShare != nil {
		s.ScreenShare = *p.ScreenShare
	}
	if p.Chat != nil {
		s.Chat = *p.Chat
	}
	if p.MaxParticipants != nil {
		s.MaxParticipants = *p.MaxParticipants
	}
	if p.ModeratorsUnmuteOnly != nil {
		s.ModeratorsUnmuteOnly = *p.ModeratorsUnmuteOnly
	}
	return s
}

// Role is what a participant may do in its room.
type Role uint8

// Roles, weakest first.
const (
	// Participant: no moderation powers.
	Participant Role = iota
	// Promoted: a moderator by a room decision (made one by another
	// moderator, or the first in the room in dev mode).
	Promoted
	// Host: a moderator by its token's moderate grant, which no room
	// decision takes away.
	Host
)

// Moderator reports whether r has moderation powers.
func (r Role) Moderator() bool { return r != Participant }

func (r Role) String() string {
	switch r {
	case Promoted:
		return "promoted"
	case Host:
		return "host"
	default:
		return "participant"
	}
}

// Action is one moderation action; the values are also the label set of
// the server's action counter and the audit log's "action".
type Action string

// The actions.
const (
	ActAdmit       Action = "admit"
	ActDeny        Action = "deny"
	ActAdmitAll    Action = "admit_all"
	ActSettings    Action = "settings"
	ActMute        Action = "mute"
	ActMuteAll     Action = "mute_all"
	ActAllowUnmute Action = "allow_unmute"
	ActRemove      Action = "remove"
	ActBan         Action = "ban"
	ActEnd         Action = "end"
	ActPromote     Action = "promote"
	ActDemote      Action = "demote"
	ActLowerHand   Action = "lower_hand"
	ActRecord      Action = "record"
)

// Actions lists every action.
func Actions() []Action {
	return []Action{ActAdmit, ActDeny, ActAdmitAll, ActSettings, ActMute, ActMuteAll, ActAllowUnmute,
		ActRemove, ActBan, ActEnd, ActPromote, ActDemote, ActLowerHand, ActRecord}
}

// targeted reports whether act names one participant.
func (a Action) targeted() bool {
	switch a {
	case ActMute, ActAllowUnmute, ActRemove, ActBan, ActPromote, ActDemote, ActLowerHand:
		return true
	}
	return false
}

// Errors of Authorize.
var (
	// ErrForbidden: the actor may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrSelf: the action makes no sense on oneself (leave instead).
	ErrSelf = errors.New("not on oneself")
)

// Authorize decides whether a participant with role actor may do act to
// a participant with role target (self: the target is the actor). Room-
// wide actions ignore target and self. Every action needs a moderator;
// beyond that: nobody removes or bans themselves, only a Host removes or
// bans a Host, and nobody demotes a Host (its token says it moderates).
func Authorize(act Action, actor, target Role, self bool) error {
	if !actor.Moderator() {
		return fmt.Errorf("%s needs the moderator role: %w", act, ErrForbidden)
	}
	if !act.targeted() {
		return nil
	}
	switch act {
	case ActRemove, ActBan:
		if self {
			return fmt.Errorf("%s: %w", act, ErrSelf)
		}
		if target == Host && actor != Host {
			return fmt.Errorf("%s: only a moderator by token removes one: %w", act, ErrForbidden)
		}
	case ActDemote:
		if target == Host {
			return fmt.Errorf("demote: the token grants moderate: %w", ErrForbidden)
		}
	}
	return nil
}

// Admission is what happens to a joiner.
type Admission uint8

// The admissions.
const (
	// Enter: the joiner joins at once.
	Enter Admission = iota
	// Wait: the joiner waits in the lobby for a moderator.
	Wait
	// Refuse: the identity is banned from this meeting.
	Refuse
)

// Joiner describes someone joining the room.
type Joiner struct {
	Identity string
	// Host: the token has the moderate grant.
	Host bool
	// Present: the identity is in the room now (a reconnect replacing
	// its older connection).
	Present bool
	// DevFirst: dev mode, and no moderator is in the room, so the joiner
	// becomes its moderator.
	DevFirst bool
}

// AuditSize is how many events a room's audit ring holds.
const AuditSize = 100

// MaxLobby bounds a room's lobby.
const MaxLobby = 200

// Entry is one joiner waiting in the lobby.
type Entry struct {
	ID       string
	Identity string
	Name     string
	Since    time.Time
	Expires  time.Time
}

// Event is one moderation event of the audit log.
type Event struct {
	At     time.Time
	Actor  string // identity ("" for the admin API)
	Action Action
	Target string // identity, lobby entry or "" for room-wide actions
	Detail string
}

// ErrLobbyFull refuses a knock beyond MaxLobby.
var ErrLobbyFull = errors.New("lobby is full")

// Room is one room's moderation state.
type Room struct {
	settings Settings
	present  map[string]string // identity -> participant sid
	lobby    map[string]*Entry // by entry id
	banned   map[string]bool
	admitted map[string]bool // let in from the lobby this meeting
	promoted map[string]bool
	// silenced: identities whose microphone a moderator muted.
	silenced map[string]bool
	events   []Event // ring of AuditSize
	next     int     // next write position in events once full
}

// NewRoom makes a room's state with settings s.
func NewRoom(s Settings) *Room {
	return &Room{
		settings: s,
		present:  map[string]string{},
		lobby:    map[string]*Entry{},
		banned:   map[string]bool{},
		admitted: map[string]bool{},
		promoted: map[string]bool{},
		silenced: map[string]bool{},
	}
}

// Settings returns the room's settings.
func (st *Room) Settings() Settings { return st.settings }

// Change applies p (validated by the caller) and returns the result.
func (st *Room) Change(p Patch) Settings {
	st.settings = st.settings.Apply(p)
	return st.settings
}

// Admit decides what happens to j.
func (st *Room) Admit(j Joiner) Admission {
	switch {
	case st.banned[j.Identity]:
		return Refuse
	case j.Host, j.Present, j.DevFirst, st.admitted[j.Identity], st.promoted[j.Identity]:
		return Enter
	case st.settings.Locked, st.settings.Lobby:
		return Wait
	}
	return Enter
}

// RoleOf is the role of identity given whether its token has the
// moderate grant.
func (st *Room) RoleOf(identity string, host bool) Role {
	switch {
	case host:
		return Host
	case st.promoted[identity]:
		return Promoted
	}
	return Participant
}

// SetPromoted makes identity a moderator of the room (or no longer one).
func (st *Room) SetPromoted(identity string, on bool) {
	if on {
		st.promoted[identity] = true
	} else {
		delete(st.promoted, identity)
	}
}

// Joined records that identity is in the room as participant sid.
func (st *Room) Joined(identity, sid string) { st.present[identity] = sid }

// Left records that participant sid of identity left; a newer
// connection of the same identity stays.
func (st *Room) Left(identity, sid string) {
	if st.present[identity] == sid {
		delete(st.present, identity)
	}
}

// Count is how many identities are in the room.
func (st *Room) Count() int { return len(st.present) }

// Empty reports whether nobody is in the room or waiting for it.
func (st *Room) Empty() bool { return len(st.present) == 0 && len(st.lobby) == 0 }

// Knock puts a joiner in the lobby until expires. An older entry of the
// same identity is taken out and returned (its connection was replaced).
func (st *Room) Knock(e Entry) (replaced *Entry, err error) {
	for id, old := range st.lobby {
		if old.Identity == e.Identity {
			delete(st.lobby, id)
			replaced = old
		}
	}
	if len(st.lobby) >= MaxLobby {
		return replaced, ErrLobbyFull
	}
	st.lobby[e.ID] = &e
	return replaced, nil
}

// Take removes entry id from the lobby (admitted, denied, gone); ok is
// false if it is no longer there, so each entry is decided once. When
// admit is set its identity is remembered as admitted for the meeting,
// so a reconnect does not wait again.
func (st *Room) Take(id string, admit bool) (Entry, bool) {
	e := st.lobby[id]
	if e == nil {
		return Entry{}, false
	}
	delete(st.lobby, id)
	if admit {
		st.admitted[e.Identity] = true
	}
	return *e, true
}

// TakeAll empties the lobby, admitting everyone in it.
func (st *Room) TakeAll() []Entry {
	out := st.Lobby()
	for _, e := range out {
		st.Take(e.ID, true)
	}
	return out
}

// Expire takes the entries whose time is up at now.
func (st *Room) Expire(now time.Time) []Entry {
	var out []Entry
	for _, e := range st.Lobby() {
		if !now.Before(e.Expires) {
			st.Take(e.ID, false)
			out = append(out, e)
		}
	}
	return out
}

// Lobby lists who is waiting, longest first.
func (st *Room) Lobby() []Entry {
	out := make([]Entry, 0, len(st.lobby))
	for _, e := range st.lobby {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}

// Remove forgets what let identity in (admission, promotion); with ban
// its new tokens are refused for the rest of the meeting.
func (st *Room) Remove(identity string, ban bool) {
	delete(st.admitted, identity)
	delete(st.promoted, identity)
	if ban {
		st.banned[identity] = true
	}
}

// Banned reports whether identity is banned from the meeting.
func (st *Room) Banned(identity string) bool { return st.banned[identity] }

// Silence records that a moderator muted identity's microphone.
func (st *Room) Silence(identity string) { st.silenced[identity] = true }

// AllowUnmute lifts Silence.
func (st *Room) AllowUnmute(identity string) { delete(st.silenced, identity) }

// MayUnmute reports whether a participant with role may unmute its own
// microphone.
func (st *Room) MayUnmute(identity string, role Role) bool {
	return role.Moderator() || !st.settings.ModeratorsUnmuteOnly || !st.silenced[identity]
}

// Errors of AskUnmute.
var (
	// ErrUnrestricted: the room lets everyone unmute themselves.
	ErrUnrestricted = errors.New("this room lets you unmute yourself")
	// ErrNotSilenced: no moderator muted the asker's microphone.
	ErrNotSilenced = errors.New("no moderator muted your microphone; unmute it yourself")
)

// AskUnmute checks that a participant with role may ask the moderators
// to let it unmute: only one they silenced under ModeratorsUnmuteOnly
// needs to.
func (st *Room) AskUnmute(identity string, role Role) error {
	switch {
	case role.Moderator() || !st.settings.ModeratorsUnmuteOnly:
		return ErrUnrestricted
	case !st.silenced[identity]:
		return ErrNotSilenced
	}
	return nil
}

// May reports whether role may share a screen (screen) or write in the
// room's conversation (chat).
func (st *Room) May(role Role, w func(Settings) Who) bool {
	return role.Moderator() || w(st.settings) == Everyone
}

// ScreenShare and Chat select a Who for May.
func ScreenShare(s Settings) Who { return s.ScreenShare }

// Chat selects the chat setting for May.
func Chat(s Settings) Who { return s.Chat }

// Record adds e to the audit ring, dropping the oldest when full.
func (st *Room) Record(e Event) {
	if len(st.events) < AuditSize {
		st.events = append(st.events, e)
		return
	}
	st.events[st.next] = e
	st.next = (st.next + 1) % AuditSize
}

// Events returns the audit ring, oldest first.
func (st *Room) Events() []Event {
	out := make([]Event, 0, len(st.events))
	out = append(out, st.events[st.next:]...)
	return append(out, st.events[:st.next]...)
}
