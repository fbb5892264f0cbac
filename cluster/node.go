package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Load is what a node tells the others of how busy it is.
type Load struct {
	CPU          float64 `json:"cpu"` // share of the machine, 0..1
	Participants int     `json:"participants"`
	Tracks       int     `json:"tracks"`
	BitrateBps   int64   `json:"bitrateBps"` // forwarded
}

// NodeInfo is a node's record in Redis.
type NodeInfo struct {
	ID       string    `json:"id"`
	URL      string    `json:"url"`
	Media    []string  `json:"media,omitempty"`
	Version  string    `json:"version"`
	Load     Load      `json:"load"`
	Draining bool      `json:"draining"`
	Renewed  time.Time `json:"renewed"`
	// Inc names this run of the node (random at start): presence entries
	// written by an earlier run of the same node id are dead although the
	// id's lease lives again (presence.go).
	Inc string `json:"inc"`
}

// ErrNoNode is returned when no live node can take a room.
var ErrNoNode = errors.New("cluster: no live node to place the room on")

// Node is this process's membership in the cluster.
type Node struct {
	cfg  Config
	rdb  *redis.Client
	log  *slog.Logger
	load func() Load
	scripts

	mu   sync.Mutex
	self NodeInfo
	// selfDrain: this process asked to drain (SetDraining), as opposed
	// to an operator's flag in Redis.
	selfDrain bool
}

// New connects to Redis (checked with a PING) and prepares this node's
// record; Run registers it. load is asked at every renewal.
func New(ctx context.Context, cfg Config, version string, load func() Load, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("cluster: cluster.redis_url is not set")
	}
	id, err := cfg.NodeName()
	if err != nil {
		return nil, err
	}
	rdb, err := dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	inc := make([]byte, 8)
	_, _ = rand.Read(inc) // crypto/rand.Read never fails
	return &Node{
		cfg: cfg, rdb: rdb, log: log, load: load, scripts: newScripts(),
		self: NodeInfo{ID: id, URL: cfg.Advertise, Media: cfg.AdvertiseMedia, Version: version, Inc: hex.EncodeToString(inc)},
	}, nil
}

// redact keeps a password in the URL out of a message.
func redact(msg, rawURL string) string {
	if opt, err := redis.ParseURL(rawURL); err == nil && opt.Password != "" {
		msg = strings.ReplaceAll(msg, opt.Password, "xxxxx")
	}
	return msg
}

// ID is this node's id.
func (n *Node) ID() string { return n.self.ID }

// Close disconnects from Redis.
func (n *Node) Close() error { return n.rdb.Close() }

func (n *Node) nodeKey(id string) string   { return n.cfg.KeyPrefix + "node:" + id }
func (n *Node) roomKey(room string) string { return n.cfg.KeyPrefix + "room:" + room }

// Run keeps this node's lease until ctx ends, then removes its record so
// the others stop placing rooms on it at once. A failed renewal is
// logged and retried at the next tick (Redis may come back; if it does
// not, the lease lapses and the others see the node gone).
func (n *Node) Run(ctx context.Context) error {
	every := n.cfg.LeaseTTL / 3
	if err := n.renew(ctx); err != nil {
		n.log.Warn("cluster: register", "err", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := n.rdb.Del(dctx, n.nodeKey(n.self.ID)).Err()
			cancel()
			if err != nil {
				n.log.Warn("cluster: deregister", "err", err)
			}
			return nil
		case <-t.C:
			if err := n.renew(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("cluster: renew lease", "err", err)
			}
		}
	}
}

func (n *Node) renew(ctx context.Context) error {
	// A silent Redis must not hold the renewal past the next tick: give
	// up and try again then (go-redis's own read timeout applies per try
	// and it retries).
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL/3)
	defer cancel()
	// An operator's drain (drain.go) joins this node's own wish.
	asked, err := n.rdb.Exists(ctx, n.drainKey(n.self.ID)).Result()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.self.Draining = n.selfDrain || asked == 1
	if n.load != nil {
		n.self.Load = n.load()
	}
	n.self.Renewed = time.Now()
	b, err := json.Marshal(n.self)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return n.rdb.Set(ctx, n.nodeKey(n.self.ID), b, n.cfg.LeaseTTL).Err()
}

// Draining reports whether this node takes no new rooms (its own wish or
// an operator's flag, as of the last renewal).
func (n *Node) Draining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.self.Draining
}

// SetDraining marks this node as taking no new rooms (published now);
// an operator's `parley cluster drain` (SetDrain) has the same effect.
func (n *Node) SetDraining(ctx context.Context, on bool) error {
	n.mu.Lock()
	n.selfDrain = on
	n.mu.Unlock()
	return n.renew(ctx)
}

// Nodes lists the live nodes (their leases have not lapsed), by id.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var keys []string
	iter := n.rdb.Scan(ctx, 0, n.nodeKey("*"), 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := n.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	var out []NodeInfo
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // lapsed between SCAN and MGET
		}
		var ni NodeInfo
		if json.Unmarshal([]byte(s), &ni) == nil {
			out = append(out, ni)
		}
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func jsonUnmarshal(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("cluster: node record: %w", err)
	}
	return nil
}

// Ping checks that Redis answers (/healthz).
func (n *Node) Ping(ctx context.Context) error { return n.rdb.Ping(ctx).Err() }
