package cluster

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"
)

// reaps collects what a node's presence reaper reports.
type reaps struct {
	mu      sync.Mutex
	changes []PresenceChange
	lost    int
}

func (r *reaps) find(identity, after string) (PresenceChange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		if c.Identity == identity && c.After == after {
			return c, true
		}
	}
	return PresenceChange{}, false
}

// runPresence runs n's presence (its reaper) until the test ends.
func runPresence(t *testing.T, n *testNode) (*Presence, *reaps) {
	t.Helper()
	r := &reaps{}
	p := NewPresence(n.Node, func(cs []PresenceChange) {
		r.mu.Lock()
		r.changes = append(r.changes, cs...)
		r.mu.Unlock()
	}, func() {
		r.mu.Lock()
		r.lost++
		r.mu.Unlock()
	}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, r
}

func mustSet(t *testing.T, p *Presence, identity, status string) PresenceChange {
	t.Helper()
	c, err := p.Set(context.Background(), identity, status)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statusOf(t *testing.T, p *Presence, identity string) PresenceState {
	t.Helper()
	m, err := p.Statuses(context.Background(), []string{identity})
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := m[identity]; ok {
		return st
	}
	return PresenceState{Status: StatusOffline}
}

// Presence is merged over the nodes: only the first device online
// anywhere, a change of the strongest status and the last device
// offline everywhere are transitions, each seen by exactly the node that
// made it, with increasing versions.
func TestPresenceMergesNodes(t *testing.T) {
	p := newPrefix(t)
	pa, _ := runPresence(t, startNode(t, p, "a", Load{}))
	pb, _ := runPresence(t, startNode(t, p, "b", Load{}))

	var last int64
	step := func(pr *Presence, status, before, after string) {
		t.Helper()
		c := mustSet(t, pr, "bob", status)
		if c.Before != before || c.After != after {
			t.Fatalf("set %s on %s: %s -> %s, want %s -> %s", status, pr.NodeID(), c.Before, c.After, before, after)
		}
		if before != after {
			if c.Version <= last {
				t.Fatalf("version %d after %d", c.Version, last)
			}
			last = c.Version
		} else if c.Version != 0 {
			t.Fatalf("no transition but version %d", c.Version)
		}
	}
	step(pa, StatusOnline, StatusOffline, StatusOnline) // first device anywhere
	step(pb, StatusOnline, StatusOnline, StatusOnline)  // a second node: no news
	step(pa, StatusOffline, StatusOnline, StatusOnline) // still on b
	if st := statusOf(t, pa, "bob"); st.Status != StatusOnline || st.Version != last {
		t.Fatalf("a reads %+v, want online at %d", st, last)
	}
	step(pb, StatusInCall, StatusOnline, StatusInCall)
	step(pa, StatusOnline, StatusInCall, StatusInCall) // in_call on b is stronger
	step(pb, StatusOnline, StatusInCall, StatusOnline)
	step(pb, StatusOffline, StatusOnline, StatusOnline)
	step(pa, StatusOffline, StatusOnline, StatusOffline) // last device everywhere
	if st := statusOf(t, pb, "bob"); st.Status != StatusOffline {
		t.Fatalf("b reads %+v after the last device left", st)
	}
}

// A node that dies stops counting when its lease lapses, and a survivor
// reports the transitions its entries leaving made (and only those):
// bob, on the dead node only, goes offline; carol, also on a live node,
// does not change.
func TestPresenceReapsDeadNode(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	pa, ra := runPresence(t, a)
	b := startNode(t, p, "b", Load{})
	pb := NewPresence(b.Node, nil, nil, slog.New(slog.DiscardHandler)) // b's reaper does not run: it dies
	mustSet(t, pb, "bob", StatusInCall)
	mustSet(t, pb, "carol", StatusOnline)
	mustSet(t, pa, "carol", StatusOnline)

	b.kill()
	killed := time.Now()
	waitFor(t, eventually, "bob reaped offline", func() bool { _, ok := ra.find("bob", StatusOffline); return ok })
	if d := time.Since(killed); d > 1500*time.Millisecond {
		t.Fatalf("bob went offline %v after his node died, with a 1 s lease", d)
	}
	c, _ := ra.find("bob", StatusOffline)
	if c.Before != StatusInCall || c.Version == 0 {
		t.Fatalf("reaped %+v", c)
	}
	if _, ok := ra.find("carol", StatusOffline); ok {
		t.Fatal("carol, still online on a, was reported offline")
	}
	if st := statusOf(t, pa, "carol"); st.Status != StatusOnline {
		t.Fatalf("carol %+v", st)
	}
	// The dead run's bookkeeping is gone; bob's hash keeps only the
	// version of his going offline, for presenceKeep.
	if n, err := a.rdb.Exists(context.Background(), pa.runSet("b", pb.inc)).Result(); err != nil || n != 0 {
		t.Fatalf("left behind: %d keys, %v", n, err)
	}
	if h, err := a.rdb.HGetAll(context.Background(), pa.key("bob")).Result(); err != nil || len(h) != 1 || h["v"] != strconv.FormatInt(c.Version, 10) {
		t.Fatalf("bob's hash after the reap: %v, %v", h, err)
	}
	if ttl, err := a.rdb.PTTL(context.Background(), pa.key("bob")).Result(); err != nil || ttl <= presenceKeep-time.Minute || ttl > presenceKeep {
		t.Fatalf("bob's hash expires in %v (%v), want within %v", ttl, err, presenceKeep)
	}
}

// A node restarted under the same id (its lease never lapsed) does not
// inherit its previous run's entries: they are dead at once and reaped.
// A run whose own entries vanished (Redis lost them) is told to write
// them again.
func TestPresenceRestartedNodeAndLostEntries(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	pa, ra := runPresence(t, a)
	old := startNode(t, p, "b", Load{})
	mustSet(t, NewPresence(old.Node, nil, nil, slog.New(slog.DiscardHandler)), "bob", StatusOnline)
	if st := statusOf(t, pa, "bob"); st.Status != StatusOnline {
		t.Fatalf("bob %+v", st)
	}
	old.kill()
	cfg := testConfig(t, p)
	cfg.NodeID = "b"
	runNode(t, cfg, Load{}) // the same id, at once
	waitFor(t, eventually, "the new run's lease", func() bool { return statusOf(t, pa, "bob").Status == StatusOffline })
	waitFor(t, eventually, "bob reaped", func() bool { _, ok := ra.find("bob", StatusOffline); return ok })

	mustSet(t, pa, "dave", StatusOnline)
	if err := a.rdb.Del(context.Background(), pa.registry()).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "a told its entries are lost", func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		return ra.lost > 0
	})
}

// A group's members are known to every node, even one where none of
// them is connected: members list themselves as they connect, a group's
// creator's node lists everyone, and one call reads the merged status
// of the members of many groups and of further identities, leaving out
// the offline ones and the caller.
func TestPresenceGroupStatuses(t *testing.T) {
	p := newPrefix(t)
	pa, _ := runPresence(t, startNode(t, p, "a", Load{}))
	pb, _ := runPresence(t, startNode(t, p, "b", Load{}))
	ctx := context.Background()
	mustSet(t, pa, "ada", StatusOnline)
	mustSet(t, pb, "bob", StatusOnline)
	mustSet(t, pb, "carol", StatusInCall)
	mustSet(t, pb, "erin", StatusOnline)

	// Bob connects on b: he lists himself in his group and sees nobody.
	if got, err := pb.GroupStatuses(ctx, "bob", []string{"g1"}, nil); err != nil || len(got) != 0 {
		t.Fatalf("bob, alone in g1 so far: %v %v", got, err)
	}
	if err := pb.AddGroupMembers(ctx, "g2", []string{"ada", "carol", "dave"}); err != nil {
		t.Fatal(err)
	}
	got, err := pa.GroupStatuses(ctx, "ada", []string{"g1", "g2"}, []string{"erin", "frank"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"bob": StatusOnline, "carol": StatusInCall, "erin": StatusOnline}
	if len(got) != len(want) {
		t.Fatalf("ada reads %v, want %v", got, want)
	}
	for id, st := range want {
		if got[id].Status != st || got[id].Version != statusOf(t, pa, id).Version || got[id].Version == 0 {
			t.Fatalf("ada reads %s as %+v, want %s at %+v", id, got[id], st, statusOf(t, pa, id))
		}
	}
	// Ada listed herself in g1 by reading it.
	if got, err := pb.GroupStatuses(ctx, "", []string{"g1"}, nil); err != nil || got["ada"].Status != StatusOnline || got["bob"].Status != StatusOnline {
		t.Fatalf("g1 read from b: %v %v, want ada and bob online", got, err)
	}
}
