package moderation

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestAuthorize covers every action for every actor role, target role
// and self/other.
func TestAuthorize(t *testing.T) {
	roles := []Role{Participant, Promoted, Host}
	for _, act := range Actions() {
		for _, actor := range roles {
			for _, target := range roles {
				for _, self := range []bool{false, true} {
					if self && target != actor {
						continue // oneself has one's own role
					}
					name := fmt.Sprintf("%s/%s->%s/self=%v", act, actor, target, self)
					var want error
					switch {
					case actor == Participant:
						want = ErrForbidden
					case (act == ActRemove || act == ActBan) && self:
						want = ErrSelf
					case (act == ActRemove || act == ActBan) && target == Host && actor != Host:
						want = ErrForbidden
					case act == ActDemote && target == Host:
						want = ErrForbidden
					}
					got := Authorize(act, actor, target, self)
					if want == nil && got != nil || want != nil && !errors.Is(got, want) {
						t.Errorf("%s: got %v, want %v", name, got, want)
					}
				}
			}
		}
	}
}

func TestAdmit(t *testing.T) {
	tests := []struct {
		name     string
		settings Settings
		prep     func(st *Room)
		j        Joiner
		want     Admission
	}{
		{"open room", DefaultSettings(), nil, Joiner{Identity: "a"}, Enter},
		{"lobby", Settings{Lobby: true}, nil, Joiner{Identity: "a"}, Wait},
		{"locked", Settings{Locked: true}, nil, Joiner{Identity: "a"}, Wait},
		{"locked host", Settings{Locked: true}, nil, Joiner{Identity: "h", Host: true}, Enter},
		{"lobby host", Settings{Lobby: true}, nil, Joiner{Identity: "h", Host: true}, Enter},
		{"locked reconnect", Settings{Locked: true}, nil, Joiner{Identity: "a", Present: true}, Enter},
		{"locked dev first", Settings{Locked: true}, nil, Joiner{Identity: "a", DevFirst: true}, Enter},
		{"locked admitted before", Settings{Locked: true}, func(st *Room) {
			_, _ = st.Knock(Entry{ID: "L1", Identity: "a"})
			st.Take("L1", true)
		}, Joiner{Identity: "a"}, Enter},
		{"locked denied before", Settings{Locked: true}, func(st *Room) {
			_, _ = st.Knock(Entry{ID: "L1", Identity: "a"})
			st.Take("L1", false)
		}, Joiner{Identity: "a"}, Wait},
		{"locked promoted", Settings{Locked: true}, func(st *Room) { st.SetPromoted("a", true) }, Joiner{Identity: "a"}, Enter},
		{"banned", DefaultSettings(), func(st *Room) { st.Remove("a", true) }, Joiner{Identity: "a"}, Refuse},
		{"banned host", DefaultSettings(), func(st *Room) { st.Remove("h", true) }, Joiner{Identity: "h", Host: true}, Refuse},
		{"banned dev first", DefaultSettings(), func(st *Room) { st.Remove("a", true) }, Joiner{Identity: "a", DevFirst: true}, Refuse},
		{"removed without ban", Settings{Locked: true}, func(st *Room) {
			_, _ = st.Knock(Entry{ID: "L1", Identity: "a"})
			st.Take("L1", true)
			st.Remove("a", false)
		}, Joiner{Identity: "a"}, Wait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := NewRoom(tc.settings)
			if tc.prep != nil {
				tc.prep(st)
			}
			if got := st.Admit(tc.j); got != tc.want {
				t.Fatalf("Admit = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLobby(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := NewRoom(Settings{Lobby: true})
	knock := func(id, who string, at time.Time) {
		t.Helper()
		if _, err := st.Knock(Entry{ID: id, Identity: who, Since: at, Expires: at.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	knock("L1", "a", t0)
	knock("L2", "b", t0.Add(time.Second))
	knock("L3", "c", t0.Add(2*time.Second))
	if l := st.Lobby(); len(l) != 3 || l[0].ID != "L1" || l[2].ID != "L3" {
		t.Fatalf("lobby %+v", l)
	}
	// The same identity knocking again replaces its entry.
	rep, err := st.Knock(Entry{ID: "L4", Identity: "b", Since: t0.Add(3 * time.Second), Expires: t0.Add(time.Hour)})
	if err != nil || rep == nil || rep.ID != "L2" {
		t.Fatalf("replaced %+v, %v", rep, err)
	}
	if _, ok := st.Take("L2", true); ok {
		t.Fatal("a replaced entry was taken")
	}
	e, ok := st.Take("L1", false)
	if !ok || e.Identity != "a" {
		t.Fatalf("take L1: %+v %v", e, ok)
	}
	if _, ok := st.Take("L1", true); ok {
		t.Fatal("an entry was decided twice")
	}
	// L3 expires at t0+62s, L4 at t0+1h.
	if got := st.Expire(t0.Add(61 * time.Second)); len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	if got := st.Expire(t0.Add(62 * time.Second)); len(got) != 1 || got[0].ID != "L3" {
		t.Fatalf("expired %+v", got)
	}
	if st.Empty() {
		t.Fatal("L4 still waits")
	}
	all := st.TakeAll()
	if len(all) != 1 || all[0].ID != "L4" || !st.Empty() {
		t.Fatalf("take all %+v, empty %v", all, st.Empty())
	}
	if st.Admit(Joiner{Identity: "b"}) != Enter {
		t.Fatal("admitted identity waits again")
	}
}

func TestLobbyFull(t *testing.T) {
	st := NewRoom(Settings{Lobby: true})
	for i := range MaxLobby {
		if _, err := st.Knock(Entry{ID: fmt.Sprint(i), Identity: fmt.Sprint("id", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Knock(Entry{ID: "x", Identity: "x"}); !errors.Is(err, ErrLobbyFull) {
		t.Fatalf("knock into a full lobby: %v", err)
	}
	// A replacement still fits.
	if _, err := st.Knock(Entry{ID: "y", Identity: "id0"}); err != nil {
		t.Fatal(err)
	}
}

func TestMayUnmuteAndSettings(t *testing.T) {
	st := NewRoom(DefaultSettings())
	st.Silence("a")
	if !st.MayUnmute("a", Participant) {
		t.Fatal("without moderators-unmute-only a muted participant may unmute")
	}
	on, mods := true, Moderators
	st.Change(Patch{ModeratorsUnmuteOnly: &on, ScreenShare: &mods})
	if st.MayUnmute("a", Participant) || !st.MayUnmute("b", Participant) || !st.MayUnmute("a", Promoted) {
		t.Fatal("moderators unmute only")
	}
	st.AllowUnmute("a")
	if !st.MayUnmute("a", Participant) {
		t.Fatal("allowed to unmute")
	}
	if st.May(Participant, ScreenShare) || !st.May(Promoted, ScreenShare) || !st.May(Participant, Chat) {
		t.Fatal("screen share for moderators, chat for everyone")
	}
}

func TestPatch(t *testing.T) {
	bad, neg, big, ok := Who("nobody"), -1, MaxParticipantsCap+1, 5
	tests := []struct {
		p       Patch
		wantErr bool
	}{
		{Patch{}, false},
		{Patch{ScreenShare: &bad}, true},
		{Patch{Chat: &bad}, true},
		{Patch{MaxParticipants: &neg}, true},
		{Patch{MaxParticipants: &big}, true},
		{Patch{MaxParticipants: &ok}, false},
	}
	for i, tc := range tests {
		if err := tc.p.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%d: Validate = %v", i, err)
		}
	}
	s := DefaultSettings().Apply(Patch{MaxParticipants: &ok})
	if s.MaxParticipants != 5 || s.ScreenShare != Everyone || s.Lobby {
		t.Fatalf("applied %+v", s)
	}
	if !(Patch{}).Empty() || (Patch{MaxParticipants: &ok}).Empty() {
		t.Fatal("Empty")
	}
}

func TestAuditRing(t *testing.T) {
	st := NewRoom(DefaultSettings())
	for i := range AuditSize + 5 {
		st.Record(Event{Target: fmt.Sprint(i)})
	}
	ev := st.Events()
	if len(ev) != AuditSize || ev[0].Target != "5" || ev[AuditSize-1].Target != fmt.Sprint(AuditSize+4) {
		t.Fatalf("ring: %d events, first %q last %q", len(ev), ev[0].Target, ev[len(ev)-1].Target)
	}
}

func TestRegistryLifetime(t *testing.T) {
	r := NewRegistry(DefaultSettings())
	on := true
	if _, err := r.Preset("r", Patch{Locked: &on}); err != nil {
		t.Fatal(err)
	}
	// The meeting starts from the preset; a ban lasts while it runs.
	r.Do("r", func(st *Room) {
		if !st.Settings().Locked {
			t.Fatal("preset not applied")
		}
		st.Joined("host", "P1")
		st.Joined("bob", "P2")
		st.Remove("bob", true)
		st.Left("bob", "P2")
		st.Record(Event{Action: ActBan, Target: "bob"})
	})
	if _, _, ev := r.View("r"); len(ev) != 1 {
		t.Fatalf("events %+v", ev)
	}
	// A replaced connection leaving does not take its successor along.
	r.Do("r", func(st *Room) {
		st.Joined("host", "P3")
		st.Left("host", "P1")
		if st.Count() != 1 || !st.Banned("bob") {
			t.Fatalf("count %d banned %v", st.Count(), st.Banned("bob"))
		}
	})
	// The last one out ends the meeting: bans and events go, the preset stays.
	r.Do("r", func(st *Room) { st.Left("host", "P3") })
	if r.Peek("r", func(*Room) {}) {
		t.Fatal("state kept after the meeting")
	}
	r.Do("r", func(st *Room) {
		if st.Banned("bob") || !st.Settings().Locked {
			t.Fatal("new meeting: no bans, preset settings")
		}
	})
	if s, _, ev := r.View("r"); !s.Locked || len(ev) != 0 {
		t.Fatalf("view %+v %+v", s, ev)
	}
	// End forgets a running meeting at once.
	r.Do("r", func(st *Room) { st.Joined("a", "P4") })
	if r.End("r") == nil || r.Peek("r", func(*Room) {}) {
		t.Fatal("End kept the meeting")
	}
	// A preset changes the running meeting too.
	r.Do("r", func(st *Room) { st.Joined("a", "P5") })
	off := false
	s, err := r.Preset("r", Patch{Locked: &off, Lobby: &on})
	if err != nil || s.Locked || !s.Lobby {
		t.Fatalf("preset %+v %v", s, err)
	}
	r.Peek("r", func(st *Room) {
		if st.Settings().Locked || !st.Settings().Lobby {
			t.Fatalf("running meeting not changed: %+v", st.Settings())
		}
	})
}

// TestAuthorizeLowerHand spells out who may lower whose hand: any
// moderator, anyone's (its own too); never a participant.
func TestAuthorizeLowerHand(t *testing.T) {
	tests := []struct {
		actor, target Role
		self          bool
		want          error
	}{
		{Participant, Participant, false, ErrForbidden},
		{Participant, Participant, true, ErrForbidden},
		{Participant, Host, false, ErrForbidden},
		{Promoted, Participant, false, nil},
		{Promoted, Host, false, nil},
		{Promoted, Promoted, true, nil},
		{Host, Participant, false, nil},
		{Host, Host, true, nil},
	}
	for _, tc := range tests {
		got := Authorize(ActLowerHand, tc.actor, tc.target, tc.self)
		if tc.want == nil && got != nil || tc.want != nil && !errors.Is(got, tc.want) {
			t.Errorf("%s lowers %s's hand (self=%v): got %v, want %v", tc.actor, tc.target, tc.self, got, tc.want)
		}
	}
}

func TestAskUnmute(t *testing.T) {
	on := true
	tests := []struct {
		name     string
		unmuteMo bool
		silenced bool
		role     Role
		want     error
	}{
		{"unrestricted room", false, true, Participant, ErrUnrestricted},
		{"not silenced", true, false, Participant, ErrNotSilenced},
		{"silenced", true, true, Participant, nil},
		{"moderator", true, true, Promoted, ErrUnrestricted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := NewRoom(DefaultSettings())
			if tc.unmuteMo {
				st.Change(Patch{ModeratorsUnmuteOnly: &on})
			}
			if tc.silenced {
				st.Silence("a")
			}
			if got := st.AskUnmute("a", tc.role); !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			st.AllowUnmute("a")
			if tc.want == nil && st.AskUnmute("a", tc.role) == nil {
				t.Fatal("allowed to unmute, still asks")
			}
		})
	}
}
