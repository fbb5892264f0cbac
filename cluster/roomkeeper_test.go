package cluster

import (
	"context"
	"log/slog"
	"testing"
)

// A claim the keeper cannot renew is taken back when it lapsed with
// nobody taking it, and reported lost (the participants here must move)
// when another live node holds it: after a node counted as dead for a
// moment, one room must not go on as two calls.
func TestRoomKeeperReclaimsOrReportsLost(t *testing.T) {
	prefix := newPrefix(t)
	a := startNode(t, prefix, "a", Load{})
	startNode(t, prefix, "b", Load{})
	ctx := context.Background()
	if owner, err := a.Reclaim(ctx, "r"); err != nil || owner != "a" {
		t.Fatalf("a claims r: %q %v", owner, err)
	}
	var lost []string
	k := NewRoomKeeper(a.Node, func() []string { return []string{"r"} }, slog.New(slog.DiscardHandler))
	k.OnLost(func(room string) { lost = append(lost, room) })
	held := map[string]bool{}

	k.tick(ctx, held)
	if len(lost) != 0 {
		t.Fatalf("a renewed its own claim and reported %v lost", lost)
	}

	// The claim lapsed (a stalled past room_ttl) and nobody took it.
	if err := a.rdb.Del(ctx, a.roomKey("r")).Err(); err != nil {
		t.Fatal(err)
	}
	k.tick(ctx, held)
	if host, ok, err := a.Host(ctx, "r"); err != nil || !ok || host.ID != "a" || len(lost) != 0 {
		t.Fatalf("after a lapsed claim: host %q (%v, %v), lost %v; want a took it back, nothing lost", host.ID, ok, err, lost)
	}

	// b took the room over while a counted as dead.
	if err := a.rdb.Set(ctx, a.roomKey("r"), "b", 0).Err(); err != nil {
		t.Fatal(err)
	}
	k.tick(ctx, held)
	if len(lost) != 1 || lost[0] != "r" {
		t.Fatalf("room held by b: lost %v, want [r]", lost)
	}
	if host, _, _ := a.Host(ctx, "r"); host.ID != "b" {
		t.Fatalf("the keeper took r from b (host %q)", host.ID)
	}
}
