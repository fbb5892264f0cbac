package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// A killed node's run is reported once, when its lease lapses, with its
// last renewal; the node watching is never reported, nor a node that
// stays.
func TestDeparturesReportKilledNode(t *testing.T) {
	p := newPrefix(t)
	a := startNode(t, p, "a", Load{})
	b := startNode(t, p, "b", Load{})
	startNode(t, p, "c", Load{}) // stays
	gone := make(chan NodeInfo, 8)
	d := NewDepartures(a.Node, func(ni NodeInfo) { gone <- ni }, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(a.cfg.LeaseTTL) // a few listings with everyone alive
	select {
	case ni := <-gone:
		t.Fatalf("%s reported gone while alive", ni.ID)
	default:
	}
	killedAt := time.Now()
	b.kill()
	select {
	case ni := <-gone:
		if ni.ID != "b" {
			t.Fatalf("%s reported gone, want b", ni.ID)
		}
		if ni.Renewed.After(killedAt) || ni.Renewed.Before(killedAt.Add(-a.cfg.LeaseTTL/2)) {
			t.Errorf("b's last renewal %v; killed at %v with a renewal every %v", ni.Renewed, killedAt, a.cfg.LeaseTTL/3)
		}
		if took := time.Since(killedAt); took > a.cfg.LeaseTTL+a.cfg.LeaseTTL/2 {
			t.Errorf("b reported %v after its kill, lease %v", took, a.cfg.LeaseTTL)
		}
	case <-time.After(3 * a.cfg.LeaseTTL):
		t.Fatalf("b not reported within %v of its kill", 3*a.cfg.LeaseTTL)
	}
	time.Sleep(a.cfg.LeaseTTL / 2)
	select {
	case ni := <-gone:
		t.Fatalf("%s reported after b", ni.ID)
	default:
	}
}
