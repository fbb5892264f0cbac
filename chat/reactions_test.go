package chat_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/parleyhq/parley/chat"
)

// TestReactPermissions: members react to text messages with the fixed
// set of emoji; non-members, other emoji and non-messages are refused,
// and the reactions fold into their message.
func TestReactPermissions(t *testing.T) {
	f := newService(t, nil)
	ctx := t.Context()
	room, _ := f.svc.JoinRoom(ctx, "r", alice, chat.RoleMember)
	if _, err := f.svc.JoinRoom(ctx, "r", bob, chat.RoleMember); err != nil {
		t.Fatal(err)
	}
	a1, _ := f.svc.Send(ctx, alice, room.ID, id(), "alice one")
	if _, err := f.svc.SystemNotice(ctx, room.ID, id(), "bob joined"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		who  chat.Identity
		seq  int64
		on   bool
		emo  string
		want error
	}{
		{"member reacts", bob, a1.Seq, true, "👍", nil},
		{"author reacts", alice, a1.Seq, true, "👍", nil},
		{"second emoji", bob, a1.Seq, true, "🎉", nil},
		{"takes one back", bob, a1.Seq, false, "🎉", nil},
		{"non-member", carol, a1.Seq, true, "👍", chat.ErrNotMember},
		{"emoji outside the set", bob, a1.Seq, true, "💩", chat.ErrInvalid},
		{"text as a reaction", bob, a1.Seq, true, "<b>hi</b>", chat.ErrInvalid},
		{"a system notice", bob, 2, true, "👍", chat.ErrInvalid},
		{"unknown seq", bob, 99, true, "👍", chat.ErrNotFound},
		{"a reaction", bob, 3, true, "👍", chat.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.React(ctx, tc.who, room.ID, id(), tc.seq, tc.emo, tc.on); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	page, err := f.svc.Range(ctx, bob.ID, room.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	vs := chat.Fold(page.Messages)
	if want := map[string][]string{"👍": {"alice", "bob"}}; len(vs) == 0 || !reflect.DeepEqual(vs[0].Reactions, want) {
		t.Fatalf("folded reactions %+v, want %v", vs, want)
	}
}
