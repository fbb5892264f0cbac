package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Draining is asked for through Redis rather than through the node's own
// API: `parley cluster drain` may run on any machine that reaches Redis,
// and the flag outlives a restart of the node (an operator draining a
// node before maintenance does not want it to take rooms again because
// it restarted). The node reads the flag at every lease renewal, so it
// takes effect within a third of cluster.lease_ttl.

func (n *Node) drainKey(id string) string { return drainKey(n.cfg.KeyPrefix, id) }

func drainKey(prefix, id string) string { return prefix + "drain:" + id }

// SetDrain asks node id to stop (on) or resume (off) taking new rooms.
// It needs no running node: the flag waits in Redis for the node to read
// it. Rooms already on the node stay there until they empty.
func SetDrain(ctx context.Context, cfg Config, id string, on bool) error {
	if !cfg.Enabled() {
		return errors.New("cluster: cluster.redis_url is not set")
	}
	if id == "" {
		var err error
		if id, err = cfg.NodeName(); err != nil {
			return err
		}
	}
	rdb, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	if on {
		err = rdb.Set(ctx, drainKey(cfg.KeyPrefix, id), "1", 0).Err()
	} else {
		err = rdb.Del(ctx, drainKey(cfg.KeyPrefix, id)).Err()
	}
	if err != nil {
		return fmt.Errorf("cluster: drain %s: %s", id, redact(err.Error(), cfg.RedisURL))
	}
	return nil
}

// Check connects to the configured Redis and pings it (parley config
// check); the error never holds the password.
func Check(ctx context.Context, cfg Config) error {
	rdb, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	return rdb.Close()
}

// ListNodes lists the live nodes of the cluster cfg names, without
// joining it (parley cluster nodes).
func ListNodes(ctx context.Context, cfg Config) ([]NodeInfo, error) {
	rdb, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rdb.Close() }()
	n := &Node{cfg: cfg, rdb: rdb}
	return n.Nodes(ctx)
}

// dial opens a client on cfg.RedisURL and pings it.
func dial(ctx context.Context, cfg Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis_url: %s", redact(err.Error(), cfg.RedisURL))
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cluster: redis at %s: %s", opt.Addr, redact(err.Error(), cfg.RedisURL))
	}
	return rdb, nil
}
