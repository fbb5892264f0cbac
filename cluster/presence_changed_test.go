package cluster

import (
	"context"
	"testing"
	"time"
)

// A node whose bus was down from since reads back what it missed: the
// identities whose merged status changed at since or later, going
// offline included (the hash keeps the version for presenceKeep), and
// not those whose last change came before; a group's listed members
// come back with it.
func TestPresenceChangedSince(t *testing.T) {
	p := newPrefix(t)
	pa, _ := runPresence(t, startNode(t, p, "a", Load{}))
	pb, _ := runPresence(t, startNode(t, p, "b", Load{}))
	mustSet(t, pa, "carol", StatusOnline) // before: unchanged since
	mustSet(t, pa, "dave", StatusOnline)  // before: went offline before
	mustSet(t, pa, "dave", StatusOffline)
	mustSet(t, pa, "bob", StatusOnline)

	time.Sleep(5 * time.Millisecond) // Redis's clock and this one: the same machine's
	since := time.Now()
	time.Sleep(5 * time.Millisecond)
	mustSet(t, pb, "bob", StatusOnline)  // also on b: no change at all
	mustSet(t, pa, "bob", StatusOffline) // still on b: no change
	mustSet(t, pb, "erin", StatusOnline)
	mustSet(t, pb, "erin", StatusInCall)
	mustSet(t, pb, "frank", StatusOnline)
	off := mustSet(t, pb, "frank", StatusOffline)

	ctx := context.Background()
	got, err := pa.ChangedSince(ctx, since, []string{"bob", "carol", "dave", "erin", "frank", "gus"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["erin"].Status != StatusInCall || got["frank"] != (PresenceState{Status: StatusOffline, Version: off.Version}) {
		t.Fatalf("changed since: %+v, want erin in_call and frank offline at %d", got, off.Version)
	}
	// After an outage longer than an offline version is kept, an
	// identity offline with no version left is returned too: its change
	// cannot be dated.
	got, err = pa.ChangedSince(ctx, time.Now().Add(-presenceKeep-time.Minute), []string{"carol", "gus"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["gus"] != (PresenceState{Status: StatusOffline}) || got["carol"].Status != StatusOnline {
		t.Fatalf("changed since long ago: %+v", got)
	}

	if err := pa.AddGroupMembers(ctx, "g1", []string{"bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	members, err := pb.GroupMembers(ctx, []string{"g1", "g2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || len(members["g1"]) != 2 || len(members["g2"]) != 0 {
		t.Fatalf("group members: %v", members)
	}
}
