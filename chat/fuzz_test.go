package chat

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz tests for everything that checks client input before it is stored.
// Run longer with: go test ./chat -run '^$' -fuzz FuzzValidateText -fuzztime 30s

func FuzzParseClientMsgID(f *testing.F) {
	for _, s := range []string{testCID, strings.ToUpper(testCID), "", "{" + testCID + "}", "00000000-0000-0000-0000-000000000000", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseClientMsgID(s)
		if err != nil {
			return
		}
		if len(id) != 36 || id != strings.ToLower(id) || !strings.EqualFold(id, s) {
			t.Fatalf("ParseClientMsgID(%q) = %q: not the canonical form of the input", s, id)
		}
		if again, err := ParseClientMsgID(id); err != nil || again != id {
			t.Fatalf("canonical id %q does not parse to itself: %q %v", id, again, err)
		}
	})
}

func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"hi", "", " ", "a\x00", "\xff", "héllo 👋", "\u202ertl", "a\r\nb"} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		err := ValidateText(s, max)
		if err != nil {
			return
		}
		if !utf8.ValidString(s) || len(s) > max || strings.TrimSpace(s) == "" || strings.ContainsRune(s, 0) {
			t.Fatalf("ValidateText accepted %q (max %d)", s, max)
		}
	})
}

func FuzzValidateEvent(f *testing.F) {
	f.Add("c1", testCID, "u1", "Ann", "text", "hello", int64(0))
	f.Add("c1", testCID, "u1", "", "edit", "fixed", int64(3))
	f.Add("c1", testCID, "u1", "", "delete", "", int64(3))
	f.Add("c1", testCID, "", "", "system", "joined", int64(0))
	f.Add("c1", testCID, "u1", "", "call_missed", "", int64(0))
	f.Fuzz(func(t *testing.T, conv, cid, sender, name, kind, text string, target int64) {
		m := Message{ConversationID: conv, ClientMsgID: cid, Sender: Identity{ID: sender, Name: name},
			Kind: EventKind(kind), Text: text, TargetSeq: target}
		if err := ValidateEvent(m, 64); err != nil {
			return
		}
		k := m.Kind
		switch {
		case !k.Valid():
			t.Fatalf("accepted kind %q", k)
		case k.Targets() != (target > 0):
			t.Fatalf("accepted %s with target %d", k, target)
		case len(text) > 64 || !utf8.ValidString(text):
			t.Fatalf("accepted text %q", text)
		case k == EventDelete && text != "":
			t.Fatal("accepted delete with text")
		case sender == "" && k != EventSystem:
			t.Fatalf("accepted %s without sender", k)
		}
	})
}

// FuzzFold builds an event list from fuzz bytes and checks Fold's promises:
// order-free, one entry per visible event, ascending seqs, tombstones empty.
func FuzzFold(f *testing.F) {
	f.Add([]byte{1, 0, 0, 2, 1, 1, 3, 2, 1})
	f.Add([]byte{0, 0, 0, 1, 2, 0, 1, 2, 0})
	kinds := []EventKind{EventText, EventEdit, EventDelete, EventCallMissed, EventSystem}
	f.Fuzz(func(t *testing.T, data []byte) {
		var events []Message
		visible := map[int64]bool{}
		for i := 0; i+2 < len(data) && len(events) < 200; i += 3 {
			seq := int64(data[i]%64) + 1
			k := kinds[int(data[i+1])%len(kinds)]
			from := []Identity{ann, ben}[data[i+2]%2]
			target := int64(0)
			if k.Targets() {
				target = int64(data[i+2] % 64)
			}
			if slices.ContainsFunc(events, func(e Message) bool { return e.Seq == seq }) {
				continue // a seq names one event
			}
			events = append(events, ev(seq, from, k, "t", target))
			if k.Visible() {
				visible[seq] = true
			}
		}
		got := Fold(events)
		if len(got) != len(visible) {
			t.Fatalf("%d entries for %d visible events", len(got), len(visible))
		}
		for i, v := range got {
			if i > 0 && got[i-1].Seq >= v.Seq {
				t.Fatal("entries not in ascending seq order")
			}
			if v.Deleted && v.Text != "" {
				t.Fatal("tombstone kept its text")
			}
		}
		rev := slices.Clone(events)
		slices.Reverse(rev)
		if !reflect.DeepEqual(Fold(rev), got) {
			t.Fatal("input order changed the result")
		}
	})
}
