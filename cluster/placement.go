package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// scripts are the Lua scripts, loaded once per node (EVALSHA after the
// first run).
type scripts struct{ claim, renew, release *redis.Script }

func newScripts() scripts {
	return scripts{redis.NewScript(claimScript), redis.NewScript(renewScript), redis.NewScript(releaseScript)}
}

// claimScript places a room atomically: the current claim stands while
// its node's lease lives; otherwise the candidate takes it.
// KEYS[1] room key, ARGV[1] node key prefix, ARGV[2] candidate node id,
// ARGV[3] claim TTL in ms. Returns the owner's id ("" when there is no
// live claim and no candidate).
const claimScript = `
local cur = redis.call('GET', KEYS[1])
if cur and redis.call('EXISTS', ARGV[1] .. cur) == 1 then
  return cur
end
if ARGV[2] == '' then
  return ''
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return ARGV[2]
`

// renewScript extends a claim only for its owner. Returns 1 if renewed.
const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

// releaseScript deletes a claim only for its owner.
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

// Place returns the node that hosts room: the one holding its claim if
// that node is alive, else the least-loaded live node that is not
// draining, which claims it. Concurrent calls on any nodes agree.
func (n *Node) Place(ctx context.Context, room string) (NodeInfo, error) {
	nodes, err := n.Nodes(ctx)
	if err != nil {
		return NodeInfo{}, err
	}
	cand, ok := leastLoaded(nodes)
	if !ok {
		cand = NodeInfo{} // nobody may take it; a live claim still answers
	}
	owner, err := n.scripts.claim.Run(ctx, n.rdb, []string{n.roomKey(room)},
		n.nodeKey(""), cand.ID, n.cfg.RoomTTL.Milliseconds()).Text()
	if err != nil {
		return NodeInfo{}, fmt.Errorf("cluster: place %s: %w", room, err)
	}
	if owner == "" {
		return NodeInfo{}, ErrNoNode
	}
	for _, ni := range nodes {
		if ni.ID == owner {
			return ni, nil
		}
	}
	// The owner registered after our listing: read its record.
	v, err := n.rdb.Get(ctx, n.nodeKey(owner)).Result()
	if err != nil {
		return NodeInfo{}, fmt.Errorf("cluster: place %s: owner %s: %w", room, owner, err)
	}
	var ni NodeInfo
	if err := jsonUnmarshal(v, &ni); err != nil {
		return NodeInfo{}, err
	}
	return ni, nil
}

// leastLoaded picks the live node with the fewest participants (then
// the lowest CPU, then the id, so every node picks the same), skipping
// draining nodes.
func leastLoaded(nodes []NodeInfo) (NodeInfo, bool) {
	var best NodeInfo
	found := false
	for _, ni := range nodes {
		if ni.Draining {
			continue
		}
		if !found || ni.Load.Participants < best.Load.Participants ||
			ni.Load.Participants == best.Load.Participants && (ni.Load.CPU < best.Load.CPU ||
				ni.Load.CPU == best.Load.CPU && ni.ID < best.ID) {
			best, found = ni, true
		}
	}
	return best, found
}

// RenewRoom extends this node's claim on room; false if another node
// holds it (or nobody).
func (n *Node) RenewRoom(ctx context.Context, room string) (bool, error) {
	v, err := n.scripts.renew.Run(ctx, n.rdb, []string{n.roomKey(room)},
		n.self.ID, n.cfg.RoomTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("cluster: renew room %s: %w", room, err)
	}
	return v == 1, nil
}

// Reclaim claims room for this node unless another live node holds it,
// and returns the holder's id: this node's after a claim that lapsed
// with nobody taking it, another's if the room moved while this node
// counted as dead.
func (n *Node) Reclaim(ctx context.Context, room string) (string, error) {
	owner, err := n.scripts.claim.Run(ctx, n.rdb, []string{n.roomKey(room)},
		n.nodeKey(""), n.self.ID, n.cfg.RoomTTL.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("cluster: reclaim room %s: %w", room, err)
	}
	return owner, nil
}

// ReleaseRoom gives up this node's claim on room (the room emptied).
func (n *Node) ReleaseRoom(ctx context.Context, room string) error {
	if err := n.scripts.release.Run(ctx, n.rdb, []string{n.roomKey(room)}, n.self.ID).Err(); err != nil {
		return fmt.Errorf("cluster: release room %s: %w", room, err)
	}
	return nil
}

// Host returns the live node that hosts room now, if any. Unlike Place
// it never places the room: the admin API asks it before acting on a
// room, and a room hosted nowhere is simply not there.
func (n *Node) Host(ctx context.Context, room string) (NodeInfo, bool, error) {
	// The claim script without a candidate only reads the live claim.
	owner, err := n.scripts.claim.Run(ctx, n.rdb, []string{n.roomKey(room)},
		n.nodeKey(""), "", n.cfg.RoomTTL.Milliseconds()).Text()
	if err != nil {
		return NodeInfo{}, false, fmt.Errorf("cluster: host of %s: %w", room, err)
	}
	if owner == "" {
		return NodeInfo{}, false, nil
	}
	v, err := n.rdb.Get(ctx, n.nodeKey(owner)).Result()
	if errors.Is(err, redis.Nil) {
		return NodeInfo{}, false, nil // its lease lapsed meanwhile
	}
	if err != nil {
		return NodeInfo{}, false, fmt.Errorf("cluster: host of %s: %w", room, err)
	}
	var ni NodeInfo
	if err := jsonUnmarshal(v, &ni); err != nil {
		return NodeInfo{}, false, err
	}
	return ni, true, nil
}
