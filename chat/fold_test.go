package chat

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var (
	ann = Identity{ID: "ann", Name: "Ann"}
	ben = Identity{ID: "ben", Name: "Ben"}
)

func ev(seq int64, from Identity, k EventKind, text string, target int64) Message {
	return Message{Seq: seq, ServerID: fmt.Sprintf("s%d", seq), ConversationID: "c", Sender: from, Kind: k,
		Text: text, TargetSeq: target, CreatedAt: time.Unix(seq, 0).UTC()}
}

// summary renders a visible list compactly for table comparisons.
func summary(vs []Visible) string {
	s := ""
	for _, v := range vs {
		s += fmt.Sprintf("[%d %s %q", v.Seq, v.Kind, v.Text)
		if v.EditSeq != 0 {
			s += fmt.Sprintf(" edited@%d", v.EditSeq)
		}
		if v.Deleted {
			s += " deleted"
		}
		s += "]"
	}
	return s
}

func TestFold(t *testing.T) {
	cases := []struct {
		name   string
		events []Message
		want   string
	}{
		{"empty", nil, ""},
		{"every visible kind", []Message{
			ev(1, ann, EventText, "hi", 0), ev(2, ben, EventCallMissed, "", 0),
			ev(3, ann, EventCallDeclined, "busy", 0), ev(4, Identity{}, EventSystem, "ben joined", 0),
		}, `[1 text "hi"][2 call_missed ""][3 call_declined "busy"][4 system "ben joined"]`},
		{"edit", []Message{ev(1, ann, EventText, "helo", 0), ev(2, ann, EventEdit, "hello", 1)},
			`[1 text "hello" edited@2]`},
		{"last edit wins", []Message{
			ev(1, ann, EventText, "a", 0), ev(2, ann, EventEdit, "b", 1), ev(3, ann, EventEdit, "c", 1),
		}, `[1 text "c" edited@3]`},
		{"delete leaves tombstone", []Message{ev(1, ann, EventText, "oops", 0), ev(2, ann, EventDelete, "", 1), ev(3, ben, EventText, "?", 0)},
			`[1 text "" deleted][3 text "?"]`},
		{"delete twice", []Message{ev(1, ann, EventText, "x", 0), ev(2, ann, EventDelete, "", 1), ev(3, ann, EventDelete, "", 1)},
			`[1 text "" deleted]`},
		{"edit of deleted message", []Message{ev(1, ann, EventText, "x", 0), ev(2, ann, EventDelete, "", 1), ev(3, ann, EventEdit, "back", 1)},
			`[1 text "" deleted]`},
		{"edit then delete", []Message{ev(1, ann, EventText, "x", 0), ev(2, ann, EventEdit, "y", 1), ev(3, ann, EventDelete, "", 1)},
			`[1 text "" edited@2 deleted]`},
		{"edit of unknown seq", []Message{ev(1, ann, EventText, "x", 0), ev(2, ann, EventEdit, "y", 7)},
			`[1 text "x"]`},
		{"delete of unknown seq", []Message{ev(5, ann, EventDelete, "", 4)}, ``},
		{"edit by someone else", []Message{ev(1, ann, EventText, "x", 0), ev(2, ben, EventEdit, "mine now", 1)},
			`[1 text "x"]`},
		{"admin delete of another's message", []Message{ev(1, ann, EventText, "x", 0), ev(2, ben, EventDelete, "", 1)},
			`[1 text "" deleted]`},
		{"edit of a call entry", []Message{ev(1, ann, EventCallMissed, "", 0), ev(2, ann, EventEdit, "no", 1)},
			`[1 call_missed ""]`},
		{"edit of an edit", []Message{ev(1, ann, EventText, "a", 0), ev(2, ann, EventEdit, "b", 1), ev(3, ann, EventEdit, "c", 2)},
			`[1 text "b" edited@2]`},
		{"target not earlier", []Message{ev(2, ann, EventEdit, "b", 2), ev(1, ann, EventText, "a", 0), ev(3, ann, EventDelete, "", 4), ev(4, ann, EventText, "d", 0)},
			`[1 text "a"][4 text "d"]`},
		{"unknown kind ignored", []Message{ev(1, ann, "poke", "x", 0)}, ``},
		{"unstored event ignored", []Message{ev(0, ann, EventText, "draft", 0)}, ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := summary(Fold(tc.events)); got != tc.want {
				t.Fatalf("Fold = %s\n        want %s", got, tc.want)
			}
		})
	}
}

// TestFoldConverges: clients receive the same events in different orders,
// some twice (a retry after a lost ack); all must show the same list.
func TestFoldConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var events []Message
		for seq := int64(1); seq <= 40; seq++ {
			from := []Identity{ann, ben}[rng.IntN(2)]
			switch r := rng.IntN(10); {
			case r < 5 || seq == 1:
				events = append(events, ev(seq, from, EventText, fmt.Sprintf("m%d", seq), 0))
			case r < 7:
				events = append(events, ev(seq, from, EventEdit, fmt.Sprintf("e%d", seq), rng.Int64N(seq+2)+1))
			case r < 8:
				events = append(events, ev(seq, from, EventDelete, "", rng.Int64N(seq+2)+1))
			case r < 9:
				k := []EventKind{EventReact, EventUnreact}[rng.IntN(2)]
				events = append(events, ev(seq, from, k, Reactions[rng.IntN(2)], rng.Int64N(seq+2)+1))
			default:
				events = append(events, ev(seq, from, EventCallMissed, "", 0))
			}
		}
		want := Fold(events)
		for range 5 {
			shuffled := append([]Message(nil), events...)
			shuffled = append(shuffled, events[:rng.IntN(len(events))]...) // duplicate deliveries
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := Fold(shuffled); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: order changed the result\n got %s\nwant %s", round, summary(got), summary(want))
			}
		}
		// Folding must not change the caller's slice.
		if !reflect.DeepEqual(Fold(events), want) {
			t.Fatal("Fold is not deterministic")
		}
	}
}

// TestFoldReactions: reactions collect per emoji in seq order, a second
// react or a stray unreact changes nothing, and a tombstone keeps none.
func TestFoldReactions(t *testing.T) {
	events := []Message{
		ev(1, ann, EventText, "hi", 0),
		ev(2, ben, EventText, "yo", 0),
		ev(3, ben, EventReact, "👍", 1),
		ev(4, ann, EventReact, "👍", 1),
		ev(5, ben, EventReact, "👍", 1),   // twice: no change
		ev(6, ann, EventUnreact, "🎉", 1), // never given
		ev(7, ann, EventReact, "🎉", 1),
		ev(8, ann, EventUnreact, "🎉", 1),
		ev(9, ann, EventReact, "❤️", 2),
		ev(10, ben, EventDelete, "", 2),
		ev(11, ann, EventReact, "😂", 12), // a later seq: ignored
	}
	vs := Fold(events)
	if want := map[string][]string{"👍": {"ann", "ben"}}; !reflect.DeepEqual(vs[0].Reactions, want) {
		t.Errorf("reactions on 1: %v, want %v", vs[0].Reactions, want)
	}
	if vs[1].Reactions != nil {
		t.Errorf("reactions on the deleted 2: %v, want none", vs[1].Reactions)
	}
}
