package cluster

import (
	"context"
	"log/slog"
	"time"
)

// RoomKeeper renews this node's claims on the rooms it hosts while they
// are in use and releases them once they empty, so the next first join
// of an empty room is placed afresh (on the least-loaded node then).
type RoomKeeper struct {
	node   *Node
	active func() []string
	log    *slog.Logger
	lost   func(room string)
}

// NewRoomKeeper keeps the claims of the rooms active lists (the rooms
// with someone in them on this node); active must be safe to call from
// the keeper's goroutine.
func NewRoomKeeper(n *Node, active func() []string, log *slog.Logger) *RoomKeeper {
	return &RoomKeeper{node: n, active: active, log: log}
}

// OnLost sets what to do when a room with participants here is found
// hosted by another node (this node counted as dead for a moment, its
// lease lapsed, and a join elsewhere took the room over): the
// participants here must move there, or the room would be split in two
// calls. Set it before Run.
func (k *RoomKeeper) OnLost(f func(room string)) { k.lost = f }

// Run renews every third of cluster.room_ttl until ctx ends, then
// releases every claim it holds (a clean shutdown frees the rooms at
// once; after a crash the claims die with the node's lease).
func (k *RoomKeeper) Run(ctx context.Context) error {
	t := time.NewTicker(k.node.cfg.RoomTTL / 3)
	defer t.Stop()
	held := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			for room := range held {
				if err := k.node.ReleaseRoom(rctx, room); err != nil {
					k.log.Warn("cluster: release room at shutdown", "room", room, "err", err)
				}
			}
			cancel()
			return nil
		case <-t.C:
			k.tick(ctx, held)
		}
	}
}

// tick renews the claims of the active rooms and releases the claims of
// rooms that emptied since the last tick.
func (k *RoomKeeper) tick(ctx context.Context, held map[string]bool) {
	now := map[string]bool{}
	for _, room := range k.active() {
		now[room] = true
		ok, err := k.node.RenewRoom(ctx, room)
		switch {
		case err != nil:
			k.log.Warn("cluster: renew room", "room", room, "err", err)
		case !ok:
			k.reclaim(ctx, room)
		}
	}
	for room := range held {
		if !now[room] {
			if err := k.node.ReleaseRoom(ctx, room); err != nil {
				k.log.Warn("cluster: release room", "room", room, "err", err)
			}
			delete(held, room)
		}
	}
	for room := range now {
		held[room] = true
	}
}

// reclaim handles a claim that could not be renewed: it lapsed (this
// node stalled past room_ttl, or Redis was away) and is taken back if
// nobody took it, or another node holds it (this node's lease lapsed,
// and a join elsewhere placed the room there), and the participants
// here are sent there.
func (k *RoomKeeper) reclaim(ctx context.Context, room string) {
	owner, err := k.node.Reclaim(ctx, room)
	switch {
	case err != nil:
		k.log.Warn("cluster: reclaim room", "room", room, "err", err)
	case owner == k.node.self.ID:
		k.log.Info("cluster: room claim lapsed and was taken back", "room", room)
	default:
		k.log.Warn("cluster: room claimed by another node; moving its participants here there", "room", room, "owner", owner)
		if k.lost != nil {
			k.lost(room)
		}
	}
}
