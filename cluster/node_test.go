package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/ids"
)

// The tests run against the real Redis on 127.0.0.1:6379 (./scripts/test
// starts one when none runs), each under its own key prefix.
const testRedis = "redis://127.0.0.1:6379/0"

func testConfig(t *testing.T, prefix string) Config {
	t.Helper()
	c := DefaultConfig()
	c.RedisURL = testRedis
	c.Advertise = "http://127.0.0.1:1"
	c.LeaseTTL = time.Second
	c.RoomTTL = 3 * time.Second
	c.KeyPrefix = prefix
	return c
}

func newPrefix(t *testing.T) string {
	t.Helper()
	p := "parley-test:" + ids.New("") + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, p+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return p
}

// testNode is a running node whose lease can be cut off as a SIGKILL
// would (kill) or ended cleanly (stop).
type testNode struct {
	*Node
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, prefix, id string, load Load) *testNode {
	t.Helper()
	cfg := testConfig(t, prefix)
	cfg.NodeID = id
	tn := runNode(t, cfg, load)
	waitFor(t, eventually, id+" registered", func() bool { return tn.sees(t, id) })
	return tn
}

// runNode starts a node of cfg and runs it until the test ends.
func runNode(t *testing.T, cfg Config, load Load) *testNode {
	t.Helper()
	n, err := New(context.Background(), cfg, "test", func() Load { return load }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("%v (is Redis running on 127.0.0.1:6379? ./scripts/test-services starts it)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{Node: n, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(tn.done); _ = n.Run(ctx) }()
	t.Cleanup(func() { tn.stop(); _ = n.Close() })
	return tn
}

// stop ends Run (which deregisters) and waits for it.
func (tn *testNode) stop() {
	tn.cancel()
	<-tn.done
}

// kill stops renewing without deregistering: the node just vanishes.
func (tn *testNode) kill() {
	tn.Node.rdb.Close() // every later Redis call of this node fails
	tn.cancel()
	<-tn.done
}

func (tn *testNode) sees(t *testing.T, id string) bool {
	nodes, err := tn.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}

// eventually bounds waits for what must happen but has no deadline of
// its own to check (a lease lapsing, an event arriving): the race
// detector and the other packages' tests on CI's two cores have stalled
// these tests' goroutines for seconds. A wait returns as soon as its
// condition holds; where a deadline is the point, the test gives it.
const eventually = 10 * time.Second

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodesRegisterAndLeave(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{Participants: 3})
	b := startNode(t, p, "b", Load{})
	c := startNode(t, p, "c", Load{})
	nodes, err := a.Nodes(context.Background())
	if err != nil || len(nodes) != 3 || nodes[0].ID != "a" || nodes[0].Load.Participants != 3 || nodes[0].URL != "http://127.0.0.1:1" {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	b.stop() // a clean shutdown leaves at once
	if a.sees(t, "b") {
		t.Fatal("a stopped node is still listed")
	}
	killed := time.Now()
	c.kill() // SIGKILL: the lease lapses
	waitFor(t, eventually, "the killed node's lease to lapse", func() bool { return !a.sees(t, "c") })
	if d := time.Since(killed); d > 1500*time.Millisecond {
		t.Fatalf("a dead node was listed for %v with a 1 s lease", d)
	}
}

// Concurrent first joins through every node place the room once.
func TestConcurrentPlacementAgrees(t *testing.T) {
	p := newPrefix(t)
	nodes := []*testNode{startNode(t, p, "a", Load{Participants: 5}), startNode(t, p, "b", Load{Participants: 1}), startNode(t, p, "c", Load{Participants: 5})}
	for round := range 5 {
		room := fmt.Sprint("room-", round)
		var mu sync.Mutex
		owners := map[string]int{}
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range 10 {
				wg.Go(func() {
					ni, err := n.Place(context.Background(), room)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					owners[ni.ID]++
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		if len(owners) != 1 || owners["b"] != 30 {
			t.Fatalf("%s placed on %v, want all 30 joins on b (least loaded)", room, owners)
		}
	}
}

func TestDeadOwnerRoomIsReplaced(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	b := startNode(t, p, "b", Load{Participants: 9})
	ctx := context.Background()
	if ni, err := b.Place(ctx, "r"); err != nil || ni.ID != "a" {
		t.Fatalf("first placement %+v %v", ni, err)
	}
	if ok, err := b.RenewRoom(ctx, "r"); err != nil || ok {
		t.Fatalf("b renewed a's room: %v %v", ok, err)
	}
	if ok, err := a.RenewRoom(ctx, "r"); err != nil || !ok {
		t.Fatalf("a could not renew its room: %v %v", ok, err)
	}
	a.kill()
	// The claim has seconds left, but its node is gone: the next join
	// moves the room.
	waitFor(t, eventually, "the room to move to b", func() bool {
		ni, err := b.Place(ctx, "r")
		return err == nil && ni.ID == "b"
	})
	if err := b.ReleaseRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
}

// TestHostReadsWithoutPlacing: Host names the live node of a room and
// never places one; a room whose node died is hosted nowhere.
func TestHostReadsWithoutPlacing(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	b := startNode(t, p, "b", Load{Participants: 9})
	ctx := context.Background()
	if _, ok, err := b.Host(ctx, "r"); err != nil || ok {
		t.Fatalf("an unplaced room has a host: %v %v", ok, err)
	}
	if _, ok, _ := b.Host(ctx, "r"); ok {
		t.Fatal("Host placed the room")
	}
	if _, err := b.Place(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if ni, ok, err := b.Host(ctx, "r"); err != nil || !ok || ni.ID != "a" {
		t.Fatalf("host %+v %v %v, want a", ni, ok, err)
	}
	a.kill()
	waitFor(t, eventually, "a's room to be hosted nowhere", func() bool {
		_, ok, err := b.Host(ctx, "r")
		return err == nil && !ok
	})
}

func TestDrainingNodeTakesNoRoom(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	b := startNode(t, p, "b", Load{Participants: 50})
	ctx := context.Background()
	if err := a.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	if ni, err := a.Place(ctx, "r"); err != nil || ni.ID != "b" {
		t.Fatalf("with a draining: %+v %v", ni, err)
	}
	if err := b.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	if ni, err := a.Place(ctx, "r"); err != nil || ni.ID != "b" {
		t.Fatalf("b's live claim should stand while b drains: %+v %v", ni, err)
	}
	if _, err := a.Place(ctx, "other"); !errors.Is(err, ErrNoNode) {
		t.Fatalf("a new room with every node draining: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("cluster off must validate: %v", err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.RedisURL = "http://x" },
		func(c *Config) { c.Advertise = "" },
		func(c *Config) { c.LeaseTTL = 30 * time.Second },
		func(c *Config) { c.RoomTTL = c.LeaseTTL },
	} {
		c := testConfig(t, "p:")
		bad(&c)
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

func TestRedactsPassword(t *testing.T) {
	cfg := testConfig(t, "p:")
	cfg.RedisURL = "redis://user:s3cretpw@127.0.0.1:1/0" // nothing listens on port 1
	_, err := New(context.Background(), cfg, "test", nil, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if msg := err.Error(); strings.Contains(msg, "s3cretpw") {
		t.Fatalf("password in error: %s", msg)
	}
}
