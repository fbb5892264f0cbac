package rooms

import (
	"slices"
	"testing"

	"github.com/parleyhq/parley/sfu"
	"github.com/parleyhq/parley/signaling/proto"
)

func TestModeratorRole(t *testing.T) {
	f := newFixture(t, 0)
	ada := f.mustJoin("r", "ada")
	bob := f.mustJoin("r", "bob")
	f.members["ada"].take()
	f.members["bob"].take()
	if f.d.HasModerator("r") || f.d.IsModerator(ada) {
		t.Fatal("nobody is a moderator yet")
	}
	f.d.SetModerator(ada, true)
	f.d.SetModerator(ada, true) // no change, no message
	if !f.d.HasModerator("r") || !f.d.IsModerator(ada) || f.d.IsModerator(bob) {
		t.Fatal("ada is the moderator")
	}
	f.expect("bob", "participant_updated:ada")
	f.expect("ada", "participant_updated:ada")
	list, _ := f.d.Participants("r")
	if !list[0].View.Moderator || list[1].View.Moderator {
		t.Fatalf("views %+v", list)
	}

	f.d.SendModerators("r", proto.Encode(proto.TypeLobbyKnock, "", proto.LobbyKnockBody{LobbyID: "L1"}))
	f.d.Send(bob, proto.Encode(proto.TypeModerated, "", proto.ModeratedBody{Action: "mute"}))
	f.expect("ada", `lobby_knock:{"lobbyId":"L1","identity":"","name":"","expiresAt":0}`)
	f.expect("bob", `moderated:{"action":"mute","by":{"identity":""}}`)
	if f.d.Count("r") != 2 || f.d.Count("nowhere") != 0 {
		t.Fatal("count")
	}
	if got := f.d.Members("r"); len(got) != 2 || got[0] != ada {
		t.Fatalf("members %v", got)
	}
}

func TestTrackSIDsAndExpel(t *testing.T) {
	f := newFixture(t, 0)
	ada := f.mustJoin("r", "ada")
	bob := f.mustJoin("r", "bob")
	if err := f.d.Announce(bob, []proto.TrackAnnouncement{
		{TrackID: "m", Kind: "audio", Source: "microphone"},
		{TrackID: "c", Kind: "video", Source: "camera"},
		{TrackID: "s", Kind: "video", Source: "screen"},
		{TrackID: "sa", Kind: "audio", Source: "screen_audio"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m", "c", "s", "sa"} {
		kind := "video"
		if id == "m" || id == "sa" {
			kind = "audio"
		}
		f.d.TrackPublished(bob, sfu.TrackInfo{SID: "TR_" + id, ClientTrackID: id, Kind: kind})
	}
	if got := f.d.TrackSIDs(bob, "screen", "screen_audio"); !slices.Equal(got, []string{"TR_s", "TR_sa"}) {
		t.Fatalf("screen tracks %v", got)
	}
	if got := f.d.TrackSIDs(bob, "microphone"); !slices.Equal(got, []string{"TR_m"}) {
		t.Fatalf("mic tracks %v", got)
	}
	f.members["ada"].take()
	f.members["bob"].take()

	if !f.d.Expel(bob, proto.Encode(proto.TypeModerated, "", proto.ModeratedBody{Action: "remove"}), proto.ByeRemoved) {
		t.Fatal("expel")
	}
	if f.d.Expel(bob, nil, proto.ByeRemoved) {
		t.Fatal("expelled twice")
	}
	f.expect("bob", `moderated:{"action":"remove","by":{"identity":""}}`, "bye:removed")
	f.expect("ada", "participant_left:bob")
	f.d.Send(bob, []byte(`{"type":"x"}`)) // gone: nothing
	f.expect("bob")

	// A replaced participant is not expelled in its successor's place.
	old := f.mustJoin("r", "cy")
	f.mustJoin("r", "cy")
	if f.d.Expel(old, nil, proto.ByeRemoved) || f.d.Lookup("r", "cy") == nil {
		t.Fatal("expelled the successor")
	}
	_ = ada
}

func TestEndRoom(t *testing.T) {
	f := newFixture(t, 0)
	f.mustJoin("r", "ada")
	f.mustJoin("r", "bob")
	f.mustJoin("other", "cy")
	f.members["ada"].take()
	f.members["bob"].take()
	f.members["cy"].take()
	notice := proto.Encode(proto.TypeModerated, "", proto.ModeratedBody{Action: "end"})
	out := f.d.EndRoom("r", notice, proto.ByeEnded)
	if len(out) != 2 {
		t.Fatalf("ended %d", len(out))
	}
	f.expect("ada", `moderated:{"action":"end","by":{"identity":""}}`, "bye:ended")
	f.expect("bob", `moderated:{"action":"end","by":{"identity":""}}`, "bye:ended")
	f.expect("cy")
	if n, p := f.d.Counts(); n != 1 || p != 1 {
		t.Fatalf("counts %d %d", n, p)
	}
	if f.d.EndRoom("r", notice, proto.ByeEnded) != nil {
		t.Fatal("ended an empty room")
	}
}
