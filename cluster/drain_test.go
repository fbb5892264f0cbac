package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// An operator's drain, asked through Redis with no access to the node,
// stops placements on it at the node's next renewal; undoing it resumes
// them.
func TestOperatorDrainThroughRedis(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	b := startNode(t, p, "b", Load{Participants: 50})
	ctx := context.Background()
	cfg := testConfig(t, p)
	if err := SetDrain(ctx, cfg, "a", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "a to publish draining", func() bool {
		nodes, err := ListNodes(ctx, cfg)
		return err == nil && len(nodes) == 2 && nodes[0].ID == "a" && nodes[0].Draining
	})
	if ni, err := b.Place(ctx, "r1"); err != nil || ni.ID != "b" {
		t.Fatalf("a new room with a drained: %+v %v, want b", ni, err)
	}
	if err := SetDrain(ctx, cfg, "a", false); err != nil {
		t.Fatal(err)
	}
	tries := 0
	waitFor(t, eventually, "a to take rooms again", func() bool {
		tries++ // a fresh room each time: a claim made while a drained stands
		ni, err := a.Place(ctx, fmt.Sprint("r2-", tries))
		return err == nil && ni.ID == "a"
	})
}

func TestCheck(t *testing.T) {
	cfg := testConfig(t, "p:")
	if err := Check(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL = "redis://:hunter2pw@127.0.0.1:1/0"
	if err := Check(context.Background(), cfg); err == nil {
		t.Fatal("a closed port answered")
	}
}

// The keeper renews the claims of rooms in use and releases those that
// emptied, and at shutdown releases all of them.
func TestRoomKeeperRenewsAndReleases(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	b := startNode(t, p, "b", Load{Participants: 50})
	ctx := context.Background()
	for _, r := range []string{"busy", "emptied"} {
		if ni, err := b.Place(ctx, r); err != nil || ni.ID != "a" {
			t.Fatalf("%s on %+v %v", r, ni, err)
		}
	}
	// The keeper must see "emptied" in use at one tick (it renews only
	// what it saw) before the room empties; seen counts the ticks.
	var mu = make(chan []string, 1)
	mu <- []string{"busy", "emptied"}
	seen := make(chan struct{}, 16)
	active := func() []string {
		l := <-mu
		mu <- l
		select {
		case seen <- struct{}{}:
		default:
		}
		return l
	}
	k := NewRoomKeeper(a.Node, active, a.log)
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = k.Run(kctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the keeper never asked which rooms are in use")
	}
	<-mu
	mu <- []string{"busy"}
	owner := func(room string) string {
		v, _ := a.rdb.Get(ctx, a.roomKey(room)).Result()
		return v
	}
	// RoomTTL is 3 s in tests and the keeper ticks every second: it
	// renewed "emptied" at the tick just seen, so a claim gone within 2 s
	// was released, not left to expire.
	waitFor(t, 2*time.Second, "the emptied room's release", func() bool { return owner("emptied") == "" })
	time.Sleep(4 * time.Second) // outlive the first claim's TTL; presence checked after
	if o := owner("busy"); o != "a" {
		t.Fatalf("busy room's claim: %q, want a (renewed)", o)
	}
	cancel()
	<-done
	if o := owner("busy"); o != "" {
		t.Fatalf("claim after shutdown: %q, want released", o)
	}
}
