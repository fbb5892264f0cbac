package rooms

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/proto"
)

func TestSetHand(t *testing.T) {
	f := newFixture(t, 0)
	ada := f.mustJoin("r", "ada")
	f.mustJoin("r", "bob")
	f.members["ada"].take()
	f.members["bob"].take()

	first := time.UnixMilli(1_700_000_000_000)
	if !f.d.SetHand(ada, true, first) || f.d.SetHand(ada, true, first.Add(time.Minute)) {
		t.Fatal("raising changes once")
	}
	f.expect("bob", "participant_updated:ada")
	f.expect("ada", "participant_updated:ada")
	list, _ := f.d.Participants("r")
	if v := list[0].View; !v.HandRaised || v.HandRaisedAt != first.UnixMilli() || list[1].View.HandRaised {
		t.Fatalf("views %+v", list)
	}
	if !f.d.HandRaised(ada) || !f.d.SetHand(ada, false, time.Time{}) || f.d.HandRaised(ada) {
		t.Fatal("lowering")
	}
	f.expect("bob", "participant_updated:ada")
	f.expect("ada", "participant_updated:ada")
	if f.d.SetHand(ada, false, time.Time{}) {
		t.Fatal("lowering a lowered hand changed something")
	}
	f.expect("bob")
	list, _ = f.d.Participants("r")
	if v := list[0].View; v.HandRaised || v.HandRaisedAt != 0 {
		t.Fatalf("lowered view %+v", v)
	}

	f.d.Broadcast("r", proto.Encode(proto.TypeReaction, "", proto.ReactionEvent{Identity: "ada", Emoji: "🎉"}))
	f.d.Broadcast("nowhere", []byte("x"))
	f.expect("ada", `reaction:{"sid":"","identity":"ada","name":"","emoji":"🎉"}`)
	f.expect("bob", `reaction:{"sid":"","identity":"ada","name":"","emoji":"🎉"}`)
}
