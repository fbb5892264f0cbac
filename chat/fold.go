package chat

import (
	"slices"
	"time"
)

// Visible is one entry of the message list a user sees.
type Visible struct {
	Seq         int64
	ServerID    string
	ClientMsgID string
	Sender      Identity
	Kind        EventKind // text, call_missed, call_declined or system
	Text        string    // current text; empty for a tombstone
	CreatedAt   time.Time
	// EditedAt is when the last applied edit was stored (zero if none).
	EditedAt time.Time
	// EditSeq is the seq of the last applied edit (0 if none).
	EditSeq int64
	// Deleted marks a tombstone: the entry stays so the list keeps its
	// shape, but its text is gone.
	Deleted bool
	// Reactions maps each emoji on a text message to the identities that
	// reacted with it, sorted (nil when none).
	Reactions map[string][]string
}

// Fold turns a conversation's events into its visible message list, ordered
// by seq. It is a pure function of the set of events: order of the input and
// duplicate copies do not matter, so two clients that received the same
// events in different orders converge on the same list. Rules:
//
//   - text, call and system events are entries at their own seq;
//   - an edit applies to an earlier text entry by the same sender that is not
//     deleted; the edit with the highest seq wins;
//   - a delete turns an earlier entry into a tombstone (clearing its text);
//     a second delete changes nothing; edits after a delete are ignored;
//   - a react adds its sender to the emoji's reactors of an earlier text
//     entry, an unreact takes them off; a tombstone keeps none;
//   - an edit or delete whose target is unknown (not in the input, or not
//     earlier than itself) is ignored, so a partial window of events folds
//     to a partial but correct list.
//
// Authorisation is the server's job (Service checks who may edit and
// delete); Fold only refuses edits by someone other than the author, as a
// second line of defence for clients.
func Fold(events []Message) []Visible {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b Message) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	out := make([]Visible, 0, len(sorted))
	index := make(map[int64]int, len(sorted))
	var lastSeq int64 = -1
	for _, e := range sorted {
		if e.Seq == lastSeq || e.Seq <= 0 {
			continue // duplicate copy of the same event, or not a stored event
		}
		lastSeq = e.Seq
		switch {
		case e.Kind.Visible():
			index[e.Seq] = len(out)
			out = append(out, Visible{
				Seq: e.Seq, ServerID: e.ServerID, ClientMsgID: e.ClientMsgID,
				Sender: e.Sender, Kind: e.Kind, Text: e.Text, CreatedAt: e.CreatedAt,
			})
		case e.Kind == EventEdit:
			i, ok := index[e.TargetSeq]
			if !ok || e.TargetSeq >= e.Seq {
				continue
			}
			v := &out[i]
			if v.Deleted || v.Kind != EventText || v.Sender.ID != e.Sender.ID {
				continue
			}
			v.Text, v.EditedAt, v.EditSeq = e.Text, e.CreatedAt, e.Seq
		case e.Kind == EventDelete:
			i, ok := index[e.TargetSeq]
			if !ok || e.TargetSeq >= e.Seq {
				continue
			}
			v := &out[i]
			v.Deleted, v.Text, v.Reactions = true, "", nil
		case e.Kind == EventReact || e.Kind == EventUnreact:
			i, ok := index[e.TargetSeq]
			if !ok || e.TargetSeq >= e.Seq || out[i].Deleted || out[i].Kind != EventText {
				continue
			}
			react(&out[i], e.Text, e.Sender.ID, e.Kind == EventReact)
		}
	}
	return out
}

// react puts who on (or takes them off) v's reactors of emoji, keeping
// the list sorted and dropping an emoji nobody is left on.
func react(v *Visible, emoji, who string, on bool) {
	ids := v.Reactions[emoji]
	at, has := slices.BinarySearch(ids, who)
	switch {
	case on && !has:
		ids = slices.Insert(ids, at, who)
	case !on && has:
		ids = slices.Delete(ids, at, at+1)
	default:
		return
	}
	if v.Reactions == nil {
		v.Reactions = map[string][]string{}
	}
	if len(ids) == 0 {
		delete(v.Reactions, emoji)
		if len(v.Reactions) == 0 {
			v.Reactions = nil
		}
		return
	}
	v.Reactions[emoji] = ids
}
