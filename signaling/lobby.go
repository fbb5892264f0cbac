package signaling

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/rooms/moderation"
	"github.com/parleyhq/parley/signaling/proto"
)

// lobbyBudget is how many refused messages a lobby connection may send
// before it is closed: it may only pong and leave.
const lobbyBudget = 5

// A lobby connection may send lobbyRate messages a second (burst
// lobbyBurst), far below the general rate: a heartbeat needs one every
// ping interval. More closes it.
const (
	lobbyRate  = 1
	lobbyBurst = 5
)

// lobbyWait is a connection waiting in a room's lobby. It has no media
// session and no room participant; its own goroutine (run) waits for the
// decision (a moderator's, the expiry, the connection's end) and, once
// admitted, makes the call session as a direct join would. Whoever takes
// the entry out of the room's moderation state owns the decision, so
// each entry is decided once.
type lobbyWait struct {
	c     *wsConn
	ss    *session
	reqID string
	entry moderation.Entry

	decide chan string   // the decision (proto.Lobby*), sent once
	gone   chan struct{} // closed when the connection ends
	done   chan struct{} // closed when run returns
	once   sync.Once

	// admitting is set before the call session is made, admitted once
	// it is ready; settled closes after either outcome.
	admitting atomic.Bool
	admitted  atomic.Bool
	settled   chan struct{}

	refused int           // messages refused while waiting; reader only
	rate    *rate.Limiter // the lobby's own budget; reader only
}

// lobbyTable finds waiting connections by lobby entry id.
type lobbyTable struct {
	mu    sync.Mutex
	waits map[string]*lobbyWait
}

func newLobbyTable() *lobbyTable { return &lobbyTable{waits: map[string]*lobbyWait{}} }

func (t *lobbyTable) add(w *lobbyWait) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waits[w.entry.ID] = w
}

func (t *lobbyTable) get(id string) *lobbyWait {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waits[id]
}

func (t *lobbyTable) drop(w *lobbyWait) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waits[w.entry.ID] == w {
		delete(t.waits, w.entry.ID)
	}
}

// enterLobby puts a joining connection in its room's lobby: it is
// answered "lobby" and the moderators are told. Runs on the reader.
func (c *wsConn) enterLobby(ss *session, reqID string) {
	s := c.s
	room := ss.claims.Room
	now := time.Now()
	w := &lobbyWait{
		c: c, ss: ss, reqID: reqID,
		entry: moderation.Entry{
			ID: ids.New("LB_"), Identity: ss.claims.Identity, Name: ss.name,
			Since: now, Expires: now.Add(s.cfg.LobbyTimeout),
		},
		rate:    rate.NewLimiter(lobbyRate, lobbyBurst),
		decide:  make(chan string, 1),
		gone:    make(chan struct{}),
		done:    make(chan struct{}),
		settled: make(chan struct{}),
	}
	// Findable before a moderator can see the entry, so no decision is lost.
	s.mod.lobby.add(w)
	var replaced *moderation.Entry
	var err error
	s.mod.reg.Do(room, func(st *moderation.Room) { replaced, err = st.Knock(w.entry) })
	if replaced != nil {
		s.mod.settle(room, []moderation.Entry{*replaced}, proto.LobbyGone)
	}
	if errors.Is(err, moderation.ErrLobbyFull) {
		s.mod.lobby.drop(w)
		c.fail(reqID, &proto.Error{Code: proto.CodeRoomFull, Message: "the room's lobby is full"}, websocket.ClosePolicyViolation)
		return
	}
	ss.lobby = w
	c.joined.Store(true) // heartbeats from now on; requests go through heldInLobby
	c.extendReadDeadline(s.cfg.PingTimeout)
	c.enqueue(proto.Encode(proto.TypeLobby, reqID, proto.LobbyBody{
		Status: proto.LobbyWaiting, LobbyID: w.entry.ID, ExpiresInMs: s.cfg.LobbyTimeout.Milliseconds(),
	}))
	s.dir.SendModerators(room, knockMessage(w.entry))
	ss.log.Info("waiting in the lobby", "room", room, "identity", ss.claims.Identity, "lobby", w.entry.ID)
	go w.run()
}

// run waits for the entry's decision and carries it out.
func (w *lobbyWait) run() {
	defer close(w.done)
	defer w.c.s.mod.lobby.drop(w)
	defer w.once.Do(func() { close(w.settled) })
	m := w.c.s.mod
	room := w.ss.claims.Room
	t := time.NewTimer(time.Until(w.entry.Expires))
	defer t.Stop()
	var how string
	select {
	case how = <-w.decide:
	case <-t.C:
		var expired bool
		m.reg.Peek(room, func(st *moderation.Room) { _, expired = st.Take(w.entry.ID, false) })
		if !expired { // decided meanwhile
			select {
			case how = <-w.decide:
			case <-w.gone:
				return
			}
			break
		}
		how = proto.LobbyExpired
		m.s.dir.SendModerators(room, lobbyLeft(w.entry, how))
	case <-w.gone:
		var took bool
		m.reg.Peek(room, func(st *moderation.Room) { _, took = st.Take(w.entry.ID, false) })
		if took {
			m.s.dir.SendModerators(room, lobbyLeft(w.entry, proto.LobbyGone))
		}
		return
	}
	w.carryOut(how)
}

// carryOut tells the waiting connection the decision; an admitted one
// joins the room.
func (w *lobbyWait) carryOut(how string) {
	c := w.c
	switch how {
	case proto.LobbyAdmitted:
		w.admitting.Store(true)
		var banned bool
		c.s.mod.reg.Peek(w.ss.claims.Room, func(st *moderation.Room) { banned = st.Banned(w.ss.claims.Identity) })
		if banned { // banned on another device while this one waited
			c.fail(w.reqID, &proto.Error{Code: proto.CodeBanned, Message: "a moderator banned this identity from the meeting"}, websocket.ClosePolicyViolation)
			return
		}
		perr, code := c.joinCall(w.ss, w.reqID)
		if perr != nil {
			c.fail(w.reqID, perr, code)
			return
		}
		c.started(w.ss)
		w.admitted.Store(true)
		w.ss.log.Info("admitted from the lobby", "lobby", w.entry.ID)
		return
	case proto.LobbyGone: // replaced by a newer connection of the identity
		c.sendBye(proto.ByeReplaced)
		return
	}
	reason := map[string]string{
		proto.LobbyDenied:  proto.ByeDenied,
		proto.LobbyExpired: proto.ByeTimeout,
		proto.LobbyEnded:   proto.ByeEnded,
	}[how]
	c.enqueue(proto.Encode(proto.TypeLobby, "", proto.LobbyBody{Status: how}))
	c.sendBye(reason)
}

// stop ends the wait as the connection ends, and waits for run.
func (w *lobbyWait) stop() {
	close(w.gone)
	<-w.done
}

func lobbyLeft(e moderation.Entry, reason string) []byte {
	return proto.Encode(proto.TypeLobbyLeft, "", proto.LobbyLeftBody{LobbyID: e.ID, Identity: e.Identity, Reason: reason})
}

// heldInLobby handles a request of a connection still in the lobby:
// pong and leave only; anything else is refused, and lobbyBudget
// refusals close it. It reports false once the session was admitted.
func (c *wsConn) heldInLobby(req proto.Request) bool {
	w := c.sess.lobby
	if w == nil {
		return false
	}
	if w.admitting.Load() {
		<-w.settled // the call session is being made; it takes moments
	}
	if w.admitted.Load() {
		return false
	}
	if !w.rate.Allow() {
		c.fail(req.ID, &proto.Error{Code: proto.CodeRateLimited, Message: "too many messages while waiting in the lobby"}, websocket.ClosePolicyViolation)
		return true
	}
	switch req.Type {
	case proto.TypePong:
		return true
	case proto.TypeLeave:
		c.sendBye(proto.ByeLeft)
		return true
	}
	w.refused++
	if w.refused >= lobbyBudget {
		c.fail(req.ID, &proto.Error{Code: proto.CodeRateLimited, Message: "too many messages while waiting in the lobby"}, websocket.ClosePolicyViolation)
		return true
	}
	c.sendError(req.ID, &proto.Error{Code: proto.CodeForbidden, Message: "waiting in the lobby: only pong and leave until a moderator admits you"})
	return true
}

// settle hands entries already taken out of the room's lobby their
// decision, and tells the moderators.
func (m *moderator) settle(room string, entries []moderation.Entry, how string) {
	for _, e := range entries {
		// The moderators first: an admitted joiner then appears after it.
		if how != proto.LobbyEnded {
			m.s.dir.SendModerators(room, lobbyLeft(e, how))
		}
		if w := m.lobby.get(e.ID); w != nil {
			w.decide <- how // buffered; the entry is decided once
		}
	}
}

// decideLobby admits or denies one waiting entry.
func (m *moderator) decideLobby(ss *session, id string, admit bool) *proto.Error {
	action, how := moderation.ActDeny, proto.LobbyDenied
	if admit {
		action, how = moderation.ActAdmit, proto.LobbyAdmitted
	}
	a, perr := m.authorize(ss, action, "")
	if perr != nil {
		return perr
	}
	var e moderation.Entry
	var ok bool
	m.reg.Peek(ss.claims.Room, func(st *moderation.Room) { e, ok = st.Take(id, admit) })
	if !ok {
		return &proto.Error{Code: proto.CodeNotFound, Message: "no such lobby entry waiting"}
	}
	a.done(e.Identity, e.ID)
	m.settle(ss.claims.Room, []moderation.Entry{e}, how)
	return nil
}

// admitAll admits everyone waiting.
func (m *moderator) admitAll(ss *session) *proto.Error {
	a, perr := m.authorize(ss, moderation.ActAdmitAll, "")
	if perr != nil {
		return perr
	}
	var all []moderation.Entry
	m.reg.Peek(ss.claims.Room, func(st *moderation.Room) { all = st.TakeAll() })
	a.done("", "admitted: "+strconv.Itoa(len(all)))
	m.settle(ss.claims.Room, all, proto.LobbyAdmitted)
	return nil
}
