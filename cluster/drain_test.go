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
	waitFor(t, 2*time.Second, "a to publish draining", func() bool {
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
	waitFor(t, 2*time.Second, "a to take rooms again", func() bool {
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
	var mu = make(chan []string, 1)
	mu <- []string{"busy", "emptied"}
	active := func() []string { l := <-mu; mu <- l; return l }
	k := NewRoomKeeper(a.Node, active, a.log)
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = k.Run(kctx) }()
	defer func() { cancel(); <-done }()
	<-mu
	mu <- []string{"busy"}
	owner := func(room string) string {
		v, _ := a.rdb.Get(ctx, a.roomKey(room)).Result()
		return v
	}
	// RoomTTL is 3 s in tests and the keeper ticks every second: after
	// 4 s "busy" lives only because it was renewed.
	waitFor(t, 3*time.Second, "the emptied room's release", func() bool { return owner("emptied") == "" })
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
