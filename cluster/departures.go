package cluster

import (
	"context"
	"log/slog"
	"time"
)

// A node killed with publications still queued (stored, never sent on
// the bus) costs the other nodes' sessions those pushes, and no bus sees
// an outage: the survivors' connections to Redis are fine. What they do
// see is the node's lease lapse. Departures lists the live nodes every
// third of the lease and reports each run that left the list since the
// last listing, with its last record: its last renewal bounds when its
// lost publications were stored. A node that left cleanly is reported
// too (its record is deleted at shutdown); a refill for it costs reads
// and pushes nothing new.
type Departures struct {
	node *Node
	gone func(NodeInfo)
	log  *slog.Logger
}

// NewDepartures reports the runs of other nodes that leave to gone, on
// Run's goroutine.
func NewDepartures(n *Node, gone func(NodeInfo), log *slog.Logger) *Departures {
	return &Departures{node: n, gone: gone, log: log}
}

// Run lists the nodes until ctx ends. A listing that fails (Redis away)
// changes nothing: the runs last seen are compared with the next
// listing that works.
func (d *Departures) Run(ctx context.Context) error {
	t := time.NewTicker(d.node.cfg.LeaseTTL / 3)
	defer t.Stop()
	var seen map[string]NodeInfo // by run: id and Inc; nil until a listing worked
	for {
		lctx, cancel := context.WithTimeout(ctx, d.node.cfg.LeaseTTL/3)
		nodes, err := d.node.Nodes(lctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			d.log.Debug("cluster: list nodes for departures", "err", err)
		default:
			now := make(map[string]NodeInfo, len(nodes))
			for _, ni := range nodes {
				if ni.ID != d.node.self.ID {
					now[ni.ID+" "+ni.Inc] = ni
				}
			}
			for run, ni := range seen {
				if _, ok := now[run]; !ok {
					d.log.Info("cluster: node left", "node", ni.ID, "renewed", ni.Renewed)
					d.gone(ni)
				}
			}
			seen = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
