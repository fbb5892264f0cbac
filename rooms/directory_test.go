package rooms

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/auth"
	"github.com/parleyhq/parley/signaling/proto"
)

// member records what the directory sends one participant, as
// "type:detail" strings, and checks that no send runs under the
// directory-wide lock.
type member struct {
	t   *testing.T
	d   *Directory
	got []string
}

func (m *member) Send(msg []byte) {
	m.locked()
	var env proto.Envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		m.t.Fatalf("undecodable message %s", msg)
	}
	detail := ""
	switch env.Type {
	case proto.TypeParticipantJoined, proto.TypeParticipantUpdated:
		var b proto.ParticipantBody
		_ = json.Unmarshal(env.Data, &b)
		detail = b.Participant.Identity
		for _, tr := range b.Participant.Tracks {
			detail += fmt.Sprintf(" %s/%s/%s/%v", tr.SID, tr.Source, tr.Kind, tr.Muted)
		}
	case proto.TypeParticipantLeft:
		var b proto.ParticipantLeftBody
		_ = json.Unmarshal(env.Data, &b)
		detail = b.Identity
	case proto.TypeMuted:
		var b proto.MutedBody
		_ = json.Unmarshal(env.Data, &b)
		detail = fmt.Sprintf("%s/%v", b.TrackID, b.Muted)
	default:
		detail = string(env.Data)
	}
	m.got = append(m.got, env.Type+":"+detail)
}

func (m *member) Bye(reason string) {
	m.locked()
	m.got = append(m.got, "bye:"+reason)
}

func (m *member) locked() {
	m.t.Helper()
	if !m.d.mu.TryLock() {
		m.t.Fatal("a member was called under the directory's lock")
	}
	m.d.mu.Unlock()
}

func (m *member) take() []string {
	out := m.got
	m.got = nil
	return out
}

type muter struct{ muted map[string]bool }

func (f *muter) SetTrackMuted(sid string, muted bool) error {
	if sid == "broken" {
		return errors.New("sfu refused")
	}
	f.muted[sid] = muted
	return nil
}

type fixture struct {
	t       *testing.T
	d       *Directory
	members map[string]*member
	clock   time.Time
}

func newFixture(t *testing.T, max int) *fixture {
	return &fixture{t: t, d: New(Config{MaxParticipants: max}, nil), members: map[string]*member{}, clock: time.Unix(1000, 0)}
}

// join adds identity to room and returns its participant; "joined" is
// recorded as "joined:<the others' identities>".
func (f *fixture) join(room, identity string) (*Participant, error) {
	m := &member{t: f.t, d: f.d}
	f.clock = f.clock.Add(time.Second)
	p := &Participant{SID: "PA_" + identity, Identity: identity, Name: strings.ToUpper(identity), Room: room,
		Grants: auth.Grants{Publish: true}, JoinedAt: f.clock, Member: m, Media: &muter{muted: map[string]bool{}}}
	err := f.d.Join(p, func(self proto.ParticipantView, others []proto.ParticipantView) []byte {
		names := []string{}
		for _, o := range others {
			names = append(names, o.Identity)
		}
		return proto.Encode(proto.TypeJoined, "", proto.ErrorBody{Code: self.Identity, Message: strings.Join(names, ",")})
	})
	if err == nil {
		f.members[identity] = m
	}
	return p, err
}

func (f *fixture) mustJoin(room, identity string) *Participant {
	f.t.Helper()
	p, err := f.join(room, identity)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) expect(identity string, want ...string) {
	f.t.Helper()
	got := f.members[identity].take()
	if !slices.Equal(got, want) {
		f.t.Fatalf("%s received %q, want %q", identity, got, want)
	}
}

func TestJoinLeaveAndReplace(t *testing.T) {
	f := newFixture(t, 0)
	f.mustJoin("r", "ada")
	f.expect("ada", `joined:{"code":"ada","message":""}`)
	f.mustJoin("r", "bob")
	f.mustJoin("r", "cy")
	f.expect("ada", "participant_joined:bob", "participant_joined:cy")
	f.expect("bob", `joined:{"code":"bob","message":"ada"}`, "participant_joined:cy")
	f.expect("cy", `joined:{"code":"cy","message":"ada,bob"}`)

	// The same identity joining again replaces the older participant: the
	// room sees it leave and come back; the old one is told why.
	oldBob := f.members["bob"]
	newBob := f.mustJoin("r", "bob")
	if got := oldBob.take(); !slices.Equal(got, []string{"bye:replaced"}) {
		t.Fatalf("replaced participant received %q", got)
	}
	f.expect("ada", "participant_left:bob", "participant_joined:bob")
	f.expect("bob", `joined:{"code":"bob","message":"ada,cy"}`)
	if n, p := f.d.Counts(); n != 1 || p != 3 {
		t.Fatalf("counts %d rooms, %d participants; want 1, 3", n, p)
	}
	if f.d.Lookup("r", "bob") != newBob {
		t.Fatal("lookup does not find the replacement")
	}

	f.d.Leave(newBob)
	f.d.Leave(newBob) // twice is harmless
	f.expect("ada", "participant_left:bob")
	f.expect("cy", "participant_left:bob", "participant_joined:bob", "participant_left:bob")
	for _, id := range []string{"ada", "cy"} {
		f.d.Leave(f.d.Lookup("r", id))
	}
	if n, p := f.d.Counts(); n != 0 || p != 0 {
		t.Fatalf("counts %d rooms, %d participants after everyone left", n, p)
	}
	if _, ok := f.d.Participants("r"); ok {
		t.Fatal("an empty room is still listed")
	}
}

func TestRoomFull(t *testing.T) {
	f := newFixture(t, 2)
	f.mustJoin("r", "ada")
	f.mustJoin("r", "bob")
	tests := []struct {
		identity string
		want     bool
	}{
		{"cy", false},  // a third
		{"bob", true},  // replaces bob
		{"ada", true},  // replaces ada
		{"dee", false}, // a third again
	}
	for _, tc := range tests {
		if got := f.d.HasSpace("r", tc.identity); got != tc.want {
			t.Errorf("HasSpace(%s) = %v, want %v", tc.identity, got, tc.want)
		}
		_, err := f.join("r", tc.identity)
		if full := errors.Is(err, ErrRoomFull); full == tc.want {
			t.Errorf("join %s: %v", tc.identity, err)
		}
	}
	if !f.d.HasSpace("other", "cy") {
		t.Fatal("the limit is per room")
	}
	if err := f.d.AddStream("r", "PA_s", "ingress-s", "S"); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("stream into a full room: %v", err)
	}
}

func TestTracks(t *testing.T) {
	f := newFixture(t, 0)
	ada := f.mustJoin("r", "ada")
	f.mustJoin("r", "bob")
	f.members["ada"].take()
	f.members["bob"].take()

	steps := []struct {
		name string
		do   func() any
		want []string // what bob receives
		ada  []string // what ada receives, when it differs from bob
	}{
		{"announce before media shows nothing", func() any {
			return f.d.Announce(ada, []proto.TrackAnnouncement{{TrackID: "cam", Kind: "video", Source: "camera"}, {TrackID: "scr", Kind: "video", Source: "screen", Muted: true}})
		}, nil, nil},
		{"published track shows its announced source", func() any {
			f.d.TrackPublished(ada, sfu.TrackInfo{SID: "TR_1", ClientTrackID: "cam", Kind: "video"})
			return nil
		}, []string{"participant_updated:ada TR_1/camera/video/false"}, nil},
		{"media without an announcement gets the usual source", func() any {
			f.d.TrackPublished(ada, sfu.TrackInfo{SID: "TR_2", ClientTrackID: "mic", Kind: "audio"})
			return nil
		}, []string{"participant_updated:ada TR_1/camera/video/false TR_2/microphone/audio/false"}, nil},
		{"mute of a shown track", func() any {
			sid, ok := f.d.SetMuted(ada, "cam", true)
			return fmt.Sprintf("%s %v", sid, ok)
		}, []string{"participant_updated:ada TR_1/camera/video/true TR_2/microphone/audio/false"}, nil},
		{"mute unchanged tells nobody", func() any {
			sid, ok := f.d.SetMuted(ada, "cam", true)
			return fmt.Sprintf("%s %v", sid, ok)
		}, nil, nil},
		{"mute of an unknown track", func() any {
			sid, ok := f.d.SetMuted(ada, "nope", true)
			return fmt.Sprintf("%s %v", sid, ok)
		}, nil, nil},
		{"unpublish of an announced, never published track", func() any {
			sid, ok := f.d.ForgetTrack(ada, "scr")
			return fmt.Sprintf("%s %v", sid, ok)
		}, nil, nil},
		{"the SFU ends a track", func() any {
			f.d.TrackUnpublished(ada, sfu.TrackInfo{SID: "TR_2"})
			return nil
		}, []string{"participant_updated:ada TR_1/camera/video/true"}, nil},
		{"admin mute tells the owner first", func() any {
			return f.d.MuteTrack("r", "ada", "TR_1", false)
		}, []string{"participant_updated:ada TR_1/camera/video/false"}, []string{"muted:cam/false", "participant_updated:ada TR_1/camera/video/false"}},
		{"admin mute of a track in that state tells nobody", func() any {
			return f.d.MuteTrack("r", "ada", "TR_1", false)
		}, nil, nil},
	}
	results := []string{"<nil>", "<nil>", "<nil>", "TR_1 true", "TR_1 true", " false", " true", "<nil>", "<nil>", "<nil>"}
	for i, st := range steps {
		got := fmt.Sprint(st.do())
		if got != results[i] {
			t.Fatalf("%s: returned %s, want %s", st.name, got, results[i])
		}
		if b := f.members["bob"].take(); !slices.Equal(b, st.want) {
			t.Fatalf("%s: bob received %q, want %q", st.name, b, st.want)
		}
		wantAda := st.want
		if st.ada != nil {
			wantAda = st.ada
		}
		if a := f.members["ada"].take(); !slices.Equal(a, wantAda) {
			t.Fatalf("%s: ada received %q, want %q", st.name, a, wantAda)
		}
	}
	many := make([]proto.TrackAnnouncement, 0, MaxTracksPerParticipant)
	for i := range MaxTracksPerParticipant {
		many = append(many, proto.TrackAnnouncement{TrackID: fmt.Sprint("t", i), Kind: "audio", Source: "microphone"})
	}
	if perr := f.d.Announce(ada, many); perr == nil || perr.Code != proto.CodeBadRequest {
		t.Fatalf("announcing past %d tracks: %v", MaxTracksPerParticipant, perr)
	}
}

func TestAdminRemoveAndMuteErrors(t *testing.T) {
	f := newFixture(t, 0)
	f.mustJoin("r", "ada")
	f.mustJoin("r", "bob")
	if err := f.d.AddStream("r", "PA_s", "ingress-s", "S"); err != nil {
		t.Fatal(err)
	}
	f.d.StreamTrackPublished("r", "PA_s", sfu.TrackInfo{SID: "TR_s", ClientTrackID: "v", Kind: "video"}, "camera")
	f.members["ada"].take()
	f.members["bob"].take()

	errs := []struct {
		name string
		err  error
		want error
	}{
		{"mute in an unknown room", f.d.MuteTrack("x", "ada", "TR_1", true), ErrNoParticipant},
		{"mute of an unknown track", f.d.MuteTrack("r", "ada", "TR_1", true), ErrNoTrack},
		{"mute of a stream", f.d.MuteTrack("r", "ingress-s", "TR_s", true), ErrStream},
		{"remove a stream", second(f.d.Remove("r", "ingress-s")), ErrStream},
		{"remove nobody", second(f.d.Remove("r", "cy")), ErrNoParticipant},
	}
	for _, tc := range errs {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := f.d.Remove("r", "bob"); err != nil {
		t.Fatal(err)
	}
	f.expect("bob", "bye:removed")
	f.expect("ada", "participant_left:bob")
	list, _ := f.d.Participants("r")
	if len(list) != 2 || list[0].View.Identity != "ada" || !list[1].View.Stream || len(list[1].View.Tracks) != 1 {
		t.Fatalf("participants after removal: %+v", list)
	}
	rooms := f.d.Rooms(func(string) bool { return true })
	if len(rooms) != 1 || rooms[0] != (RoomSummary{Name: "r", Participants: 2}) {
		t.Fatalf("rooms: %+v", rooms)
	}
	if len(f.d.Rooms(func(string) bool { return false })) != 0 {
		t.Fatal("a room the caller may not see is listed")
	}
}

func second[T any](_ T, err error) error { return err }

func TestStreams(t *testing.T) {
	f := newFixture(t, 0)
	f.mustJoin("stage", "ada")
	f.members["ada"].take()
	if err := f.d.AddStream("bad room!", "PA_s", "ingress-s", "S"); err == nil {
		t.Fatal("invalid room name accepted")
	}
	if err := f.d.AddStream("stage", "PA_x", "ada", "S"); !errors.Is(err, ErrIdentityInRoom) {
		t.Fatalf("stream with a present identity: %v", err)
	}
	if err := f.d.AddStream("stage", "PA_s", "ingress-s", "S"); err != nil {
		t.Fatal(err)
	}
	f.d.StreamTrackPublished("stage", "PA_s", sfu.TrackInfo{SID: "TR_v", ClientTrackID: "v", Kind: "video"}, "camera")
	f.d.StreamAudioUnavailable("stage", "PA_s", "ffmpeg not found")
	f.d.StreamTrackUnpublished("stage", "PA_s", sfu.TrackInfo{SID: "TR_v", ClientTrackID: "v"})
	f.d.StreamTrackPublished("stage", "PA_other", sfu.TrackInfo{SID: "TR_z", ClientTrackID: "z", Kind: "video"}, "camera")
	f.d.RemoveStream("stage", "PA_s")
	f.expect("ada",
		"participant_joined:ingress-s",
		"participant_updated:ingress-s TR_v/camera/video/false",
		"participant_updated:ingress-s TR_v/camera/video/false",
		"participant_updated:ingress-s",
		"participant_left:ingress-s")
	if _, p := f.d.Counts(); p != 1 {
		t.Fatalf("%d participants after the stream left", p)
	}
}

// TestByeAll: every participant of every room is told to go (outside the
// directory's lock), and stays in its room until its connection leaves.
func TestByeAll(t *testing.T) {
	f := newFixture(t, 10)
	for _, j := range [][2]string{{"a", "ann"}, {"a", "bob"}, {"b", "cy"}} {
		if _, err := f.join(j[0], j[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range f.members {
		m.take()
	}
	if n := f.d.ByeAll("reconnect"); n != 3 {
		t.Fatalf("ByeAll told %d, want 3", n)
	}
	for id, m := range f.members {
		if got := m.take(); !slices.Equal(got, []string{"bye:reconnect"}) {
			t.Errorf("%s got %v, want one bye", id, got)
		}
	}
	if _, n := f.d.Counts(); n != 3 {
		t.Errorf("%d participants after ByeAll, want all 3 until they leave", n)
	}
}
