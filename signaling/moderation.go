package signaling

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/moderation"
	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// moderator runs the rooms' moderation (docs/protocol.md, Moderation):
// it decides joins (ban, cap, lobby), carries out moderators' actions
// and enforces the room settings on everyone's requests. The state is
// rooms/moderation's, under its registry's lock; it is never held while
// the directory is called, and the directory's lock is never held while
// it is taken.
type moderator struct {
	s   *Server
	reg *moderation.Registry
	// lobby connections waiting, by lobby entry id (lobby.go).
	lobby *lobbyTable
}

func newModerator(s *Server) *moderator {
	defaults := moderation.DefaultSettings()
	defaults.Lobby = s.cfg.LobbyByDefault
	for _, a := range moderation.Actions() {
		s.metrics.moderation.WithLabelValues(string(a)) // show every action at 0
	}
	return &moderator{s: s, reg: moderation.NewRegistry(defaults), lobby: newLobbyTable()}
}

// The moderation handlers join the dispatch table here, so this feature
// stays in its own files; TestEveryTypeHasAHandler still checks them.
func init() {
	maps.Copy(handlers, moderationHandlers)
}

//nolint:gochecknoglobals // a read-only table, merged into handlers at init
var moderationHandlers = map[string]handler{
	proto.TypeLobbyAdmit: func(ss *session, r proto.Request) *proto.Error {
		return ss.s.mod.decideLobby(ss, r.Body.(*proto.LobbyRefBody).LobbyID, true)
	},
	proto.TypeLobbyDeny: func(ss *session, r proto.Request) *proto.Error {
		return ss.s.mod.decideLobby(ss, r.Body.(*proto.LobbyRefBody).LobbyID, false)
	},
	proto.TypeLobbyAdmitAll: func(ss *session, _ proto.Request) *proto.Error {
		return ss.s.mod.admitAll(ss)
	},
	proto.TypeRoomSettings: func(ss *session, r proto.Request) *proto.Error {
		return ss.s.mod.changeSettings(ss, r.Body.(*proto.RoomSettingsBody))
	},
	proto.TypeModMute: func(ss *session, r proto.Request) *proto.Error {
		b := r.Body.(*proto.ModMuteBody)
		return ss.s.mod.mute(ss, b.Identity, b.Source)
	},
	proto.TypeModMuteAll: func(ss *session, _ proto.Request) *proto.Error {
		return ss.s.mod.muteAll(ss)
	},
	proto.TypeModAllowUnmute: func(ss *session, r proto.Request) *proto.Error {
		return ss.s.mod.allowUnmute(ss, r.Body.(*proto.ModTargetBody).Identity)
	},
	proto.TypeModRemove: func(ss *session, r proto.Request) *proto.Error {
		b := r.Body.(*proto.ModRemoveBody)
		return ss.s.mod.remove(ss, b.Identity, b.Ban)
	},
	proto.TypeModRole: func(ss *session, r proto.Request) *proto.Error {
		b := r.Body.(*proto.ModRoleBody)
		return ss.s.mod.setRole(ss, b.Identity, *b.Moderator)
	},
	proto.TypeEndMeeting: func(ss *session, _ proto.Request) *proto.Error {
		return ss.s.mod.end(ss)
	},
	proto.TypeModLowerHand: func(ss *session, r proto.Request) *proto.Error {
		return ss.s.mod.lowerHand(ss, r.Body.(*proto.ModTargetBody).Identity) // hands.go
	},
}

// role is what claims may do in their room now.
func (m *moderator) role(c auth.Claims) moderation.Role {
	r := moderation.Participant
	m.reg.Do(c.Room, func(st *moderation.Room) { r = st.RoleOf(c.Identity, c.Grants.Moderate) })
	return r
}

// admission decides a call join before any media is made: refused
// (banned, over the room's cap), wait in the lobby, or go on.
func (s *Server) admission(ss *session) (wait bool, perr *proto.Error) {
	c := ss.claims
	if c.Room == auth.AllRooms || !rooms.ValidName(c.Room) {
		return false, nil // joinCall refuses it
	}
	j := moderation.Joiner{
		Identity: c.Identity,
		Host:     c.Grants.Moderate,
		Present:  s.dir.Lookup(c.Room, c.Identity) != nil,
		DevFirst: s.cfg.DevMode && !s.dir.HasModerator(c.Room),
	}
	count := s.dir.Count(c.Room)
	var adm moderation.Admission
	var full bool
	s.mod.reg.Do(c.Room, func(st *moderation.Room) {
		adm = st.Admit(j)
		if adm != moderation.Enter {
			return
		}
		if limit := st.Settings().MaxParticipants; limit > 0 && !j.Present && count >= limit {
			full = true
			return
		}
	})
	switch {
	case adm == moderation.Refuse:
		ss.log.Info("join refused", "reason", "banned from the meeting", "room", c.Room, "identity", c.Identity)
		return false, &proto.Error{Code: proto.CodeBanned, Message: "a moderator banned this identity from the meeting"}
	case full:
		return false, &proto.Error{Code: proto.CodeRoomFull, Message: "room is full (the room's maxParticipants)"}
	}
	return adm == moderation.Wait, nil
}

// joinsAsModerator reports whether claims join their room as a
// moderator: by grant or promotion, or in dev mode as the first in a
// room without a moderator.
func (m *moderator) joinsAsModerator(c auth.Claims) bool {
	return m.role(c).Moderator() || m.s.cfg.DevMode && !m.s.dir.HasModerator(c.Room)
}

// joined records a participant that entered its room (a dev-mode first
// moderator is promoted for the meeting), and shows a moderator who is
// waiting in the lobby.
func (m *moderator) joined(p *rooms.Participant) {
	var waiting []moderation.Entry
	isMod := m.s.dir.IsModerator(p)
	m.reg.Do(p.Room, func(st *moderation.Room) {
		st.Joined(p.Identity, p.SID)
		if isMod && !p.Grants.Moderate {
			st.SetPromoted(p.Identity, true)
		}
		waiting = st.Lobby()
	})
	if isMod {
		m.showLobby(p, waiting)
	}
}

// left records that a participant left its room.
func (m *moderator) left(p *rooms.Participant) {
	m.reg.Peek(p.Room, func(st *moderation.Room) { st.Left(p.Identity, p.SID) })
}

func (m *moderator) showLobby(p *rooms.Participant, waiting []moderation.Entry) {
	for _, e := range waiting {
		m.s.dir.Send(p, knockMessage(e))
	}
}

func knockMessage(e moderation.Entry) []byte {
	return proto.Encode(proto.TypeLobbyKnock, "", proto.LobbyKnockBody{
		LobbyID: e.ID, Identity: e.Identity, Name: e.Name, ExpiresAt: e.Expires.UnixMilli(),
	})
}

func settingsView(s moderation.Settings) proto.RoomSettingsView {
	return proto.RoomSettingsView{
		Lobby: s.Lobby, Locked: s.Locked, ScreenShare: string(s.ScreenShare), Chat: string(s.Chat),
		MaxParticipants: s.MaxParticipants, ModeratorsUnmuteOnly: s.ModeratorsUnmuteOnly,
	}
}

// settingsView is the room's settings for "joined".
func (m *moderator) settingsView(room string) proto.RoomSettingsView {
	var s moderation.Settings
	m.reg.Do(room, func(st *moderation.Room) { s = st.Settings() })
	return settingsView(s)
}

func patchOf(b *proto.RoomSettingsBody) moderation.Patch {
	p := moderation.Patch{Lobby: b.Lobby, Locked: b.Locked, MaxParticipants: b.MaxParticipants, ModeratorsUnmuteOnly: b.ModeratorsUnmuteOnly}
	if b.ScreenShare != nil {
		w := moderation.Who(*b.ScreenShare)
		p.ScreenShare = &w
	}
	if b.Chat != nil {
		w := moderation.Who(*b.Chat)
		p.Chat = &w
	}
	return p
}

// act is one moderator request being authorised: the actor's session
// and role, and the target participant when there is one.
type act struct {
	m      *moderator
	ss     *session
	action moderation.Action
	target *rooms.Participant
}

// authorize checks that ss may do action (to the participant identity,
// unless it is ""), from its token's grants and the room's state.
func (m *moderator) authorize(ss *session, action moderation.Action, identity string) (*act, *proto.Error) {
	room := ss.claims.Room
	a := &act{m: m, ss: ss, action: action}
	var actor, target moderation.Role
	var tp *rooms.Participant
	if identity != "" {
		tp = m.s.dir.Lookup(room, identity)
	}
	m.reg.Do(room, func(st *moderation.Room) {
		actor = st.RoleOf(ss.claims.Identity, ss.claims.Grants.Moderate)
		if tp != nil {
			target = st.RoleOf(tp.Identity, tp.Grants.Moderate)
		}
	})
	if !actor.Moderator() {
		ss.call.log.Info("moderation refused", "action", string(action), "target", identity, "reason", "not a moderator")
		return nil, &proto.Error{Code: proto.CodeForbidden, Message: string(action) + " needs the moderator role"}
	}
	if identity != "" {
		if tp == nil {
			return nil, &proto.Error{Code: proto.CodeNotFound, Message: "no such participant in the room"}
		}
		if tp.Member == nil {
			return nil, proto.BadRequest("%s: %s is an ingest stream", action, identity)
		}
	}
	err := moderation.Authorize(action, actor, target, identity == ss.claims.Identity)
	switch {
	case errors.Is(err, moderation.ErrSelf):
		return nil, proto.BadRequest("%s: not on yourself (use leave)", action)
	case err != nil:
		ss.call.log.Info("moderation refused", "action", string(action), "target", identity, "reason", err.Error())
		return nil, &proto.Error{Code: proto.CodeForbidden, Message: err.Error()}
	}
	a.target = tp
	return a, nil
}

// by is the actor as the affected participant sees it.
func (a *act) by() proto.IdentityView {
	return proto.IdentityView{Identity: a.ss.claims.Identity, Name: a.ss.name}
}

// done logs, counts and records the action in the room's audit ring.
// It runs once the action is authorised and before its effects are
// seen, so the audit log never lags what participants were told.
func (a *act) done(target, detail string) {
	a.m.record(a.ss.claims.Room, a.ss.claims.Identity, a.action, target, detail)
	a.ss.call.log.Info("moderation", "action", string(a.action), "target", target, "detail", detail)
}

func (m *moderator) record(room, actor string, action moderation.Action, target, detail string) {
	m.s.metrics.moderation.WithLabelValues(string(action)).Inc()
	m.reg.Peek(room, func(st *moderation.Room) {
		st.Record(moderation.Event{At: time.Now(), Actor: actor, Action: action, Target: target, Detail: detail})
	})
}

// tell sends the affected participant a "moderated" notice.
func (a *act) tell(p *rooms.Participant, body proto.ModeratedBody) {
	body.By = a.by()
	a.m.s.dir.Send(p, proto.Encode(proto.TypeModerated, "", body))
}

func (m *moderator) changeSettings(ss *session, b *proto.RoomSettingsBody) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActSettings, "")
	if perr != nil {
		return perr
	}
	patch := patchOf(b)
	if err := patch.Validate(); err != nil {
		return proto.BadRequest("room_settings: %v", err)
	}
	var s moderation.Settings
	m.reg.Do(ss.claims.Room, func(st *moderation.Room) { s = st.Change(patch) })
	a.done("", settingsDetail(s))
	m.settingsChanged(ss.claims.Room, s, a.by())
	return nil
}

// settingsDetail renders settings as JSON for the audit log.
func settingsDetail(s moderation.Settings) string {
	b, err := json.Marshal(settingsView(s))
	if err != nil {
		return ""
	}
	return string(b)
}

// settingsChanged pushes new settings to the room, and admits everyone
// waiting once the room has neither lobby nor lock.
func (m *moderator) settingsChanged(room string, s moderation.Settings, by proto.IdentityView) {
	msg := proto.Encode(proto.TypeRoomSettings, "", proto.RoomSettingsPush{Settings: settingsView(s), By: by})
	for _, p := range m.s.dir.Members(room) {
		m.s.dir.Send(p, msg)
	}
	if !s.Lobby && !s.Locked {
		var all []moderation.Entry
		m.reg.Peek(room, func(st *moderation.Room) { all = st.TakeAll() })
		m.settle(room, all, proto.LobbyAdmitted)
	}
}

// mute mutes a participant's tracks of one source.
func (m *moderator) mute(ss *session, identity, source string) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActMute, identity)
	if perr != nil {
		return perr
	}
	a.done(identity, source)
	m.muteSource(a, a.target, source)
	return nil
}

// muteSource mutes p's tracks of source in the SFU (as the admin mute)
// and tells p; a muted microphone is remembered for
// moderatorsUnmuteOnly.
func (m *moderator) muteSource(a *act, p *rooms.Participant, source string) {
	sources := []string{source}
	if source == proto.ModSourceScreen {
		sources = append(sources, "screen_audio")
	}
	for _, sid := range m.s.dir.TrackSIDs(p, sources...) {
		if err := m.s.dir.MuteTrack(p.Room, p.Identity, sid, true); err != nil {
			a.ss.call.log.Info("moderator mute", "target", p.Identity, "track", sid, "err", err)
		}
	}
	if source == proto.ModSourceMicrophone {
		m.reg.Do(p.Room, func(st *moderation.Room) { st.Silence(p.Identity) })
	}
	a.tell(p, proto.ModeratedBody{Action: string(moderation.ActMute), Source: source})
}

// muteAll mutes the microphone of everyone who is not a moderator.
func (m *moderator) muteAll(ss *session) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActMuteAll, "")
	if perr != nil {
		return perr
	}
	var targets []*rooms.Participant
	for _, p := range m.s.dir.Members(ss.claims.Room) {
		if !m.role(auth.Claims{Room: p.Room, Identity: p.Identity, Grants: p.Grants}).Moderator() {
			targets = append(targets, p)
		}
	}
	a.done("", "participants muted: "+strconv.Itoa(len(targets)))
	for _, p := range targets {
		m.muteSource(a, p, proto.ModSourceMicrophone)
	}
	return nil
}

func (m *moderator) allowUnmute(ss *session, identity string) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActAllowUnmute, identity)
	if perr != nil {
		return perr
	}
	m.reg.Do(ss.claims.Room, func(st *moderation.Room) { st.AllowUnmute(identity) })
	a.done(identity, "")
	a.tell(a.target, proto.ModeratedBody{Action: string(moderation.ActAllowUnmute)})
	return nil
}

// remove takes a participant out, cuts its media at once, refuses its
// older tokens and, with ban, every token of the identity for the rest
// of the meeting.
func (m *moderator) remove(ss *session, identity string, ban bool) *proto.Error {
	action := moderation.ActRemove
	if ban {
		action = moderation.ActBan
	}
	a, perr := m.authorize(ss, action, identity)
	if perr != nil {
		return perr
	}
	room := ss.claims.Room
	m.reg.Do(room, func(st *moderation.Room) { st.Remove(identity, ban) })
	m.s.removals.add(room, identity, time.Now())
	a.done(identity, "")
	// Its tracks leave every subscriber now, before it is told.
	cutMedia(a.target)
	notice := proto.Encode(proto.TypeModerated, "", proto.ModeratedBody{Action: string(moderation.ActRemove), By: a.by(), Ban: ban})
	m.s.dir.Expel(a.target, notice, proto.ByeRemoved)
	return nil
}

// cutMedia closes a participant's media session now, so its tracks
// leave every subscriber without waiting for its connection to close.
func cutMedia(p *rooms.Participant) {
	if cs, ok := p.Member.(*callSession); ok {
		if err := cs.peer.Close(); err != nil {
			cs.log.Debug("closing media session", "err", err)
		}
	}
}

func (m *moderator) setRole(ss *session, identity string, on bool) *proto.Error {
	action := moderation.ActDemote
	if on {
		action = moderation.ActPromote
	}
	a, perr := m.authorize(ss, action, identity)
	if perr != nil {
		return perr
	}
	var waiting []moderation.Entry
	m.reg.Do(ss.claims.Room, func(st *moderation.Room) {
		st.SetPromoted(identity, on)
		waiting = st.Lobby()
	})
	a.done(identity, "")
	isMod := on || a.target.Grants.Moderate
	wasMod := m.s.dir.IsModerator(a.target)
	m.s.dir.SetModerator(a.target, isMod)
	a.tell(a.target, proto.ModeratedBody{Action: string(action), Moderator: &isMod})
	if isMod && !wasMod {
		m.showLobby(a.target, waiting)
	}
	return nil
}

// end ends the meeting for everyone: the room and its lobby.
func (m *moderator) end(ss *session) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActEnd, "")
	if perr != nil {
		return perr
	}
	room := ss.claims.Room
	a.done("", "")
	st := m.reg.End(room)
	for _, p := range m.s.dir.Members(room) {
		cutMedia(p)
	}
	notice := proto.Encode(proto.TypeModerated, "", proto.ModeratedBody{Action: string(moderation.ActEnd), By: a.by()})
	for _, p := range m.s.dir.EndRoom(room, notice, proto.ByeEnded) {
		cutMedia(p) // anyone who joined meanwhile
	}
	if st != nil {
		m.settle(room, st.Lobby(), proto.LobbyEnded)
	}
	m.s.rec.meetingEnded(room, a.by())
	m.s.rst.meetingEnded(room, a.by())
	return nil
}

// trackPublished keeps a microphone a moderator muted muted under
// moderatorsUnmuteOnly, however the new track was announced (muted in
// "publish", or not at all): the SFU does not forward it.
func (m *moderator) trackPublished(cs *callSession, info sfu.TrackInfo) {
	if info.Kind != "audio" {
		return
	}
	c := cs.ss.claims
	may := true
	m.reg.Peek(c.Room, func(st *moderation.Room) {
		may = st.MayUnmute(c.Identity, st.RoleOf(c.Identity, c.Grants.Moderate))
	})
	if may || !slices.Contains(m.s.dir.TrackSIDs(cs.p, proto.ModSourceMicrophone), info.SID) {
		return
	}
	if err := m.s.dir.MuteTrack(c.Room, c.Identity, info.SID, true); err != nil {
		cs.log.Info("keeping a moderator's mute", "track", info.SID, "err", err)
	}
}

// restrict enforces the room's settings on a joined call session's
// requests: screen sharing, the room's chat, unmuting a microphone a
// moderator muted.
func (m *moderator) restrict(ss *session, req proto.Request) *proto.Error {
	cs := ss.call
	if cs == nil {
		return nil
	}
	var convID string
	switch b := req.Body.(type) {
	case *proto.PublishBody, *proto.MuteBody:
	case *proto.ChatSendBody:
		convID = b.ConversationID
	case *proto.ChatEditBody:
		convID = b.ConversationID
	case *proto.ChatReactBody:
		convID = b.ConversationID
	default:
		return nil
	}
	if convID != "" && convID != cs.p.ConversationID {
		return nil
	}
	var st moderation.Settings
	var role moderation.Role
	var mayUnmute bool
	m.reg.Do(ss.claims.Room, func(r *moderation.Room) {
		st = r.Settings()
		role = r.RoleOf(ss.claims.Identity, ss.claims.Grants.Moderate)
		mayUnmute = r.MayUnmute(ss.claims.Identity, role)
	})
	if role.Moderator() {
		return nil
	}
	forbid := func(msg string) *proto.Error { return &proto.Error{Code: proto.CodeForbidden, Message: msg} }
	switch b := req.Body.(type) {
	case *proto.PublishBody:
		for _, t := range b.Tracks {
			if (t.Source == "screen" || t.Source == "screen_audio") && st.ScreenShare != moderation.Everyone {
				return forbid("only moderators may share a screen in this room")
			}
			if t.Source == proto.ModSourceMicrophone && !t.Muted && !mayUnmute {
				return forbid("a moderator muted you; only a moderator can let you unmute")
			}
		}
	case *proto.MuteBody:
		if !*b.Muted && !mayUnmute && m.s.dir.SourceOf(cs.p, b.TrackID) == proto.ModSourceMicrophone {
			return forbid("a moderator muted you; only a moderator can let you unmute")
		}
	default: // the room's chat
		if st.Chat != moderation.Everyone {
			return forbid("only moderators may write in this room's chat")
		}
	}
	return nil
}
