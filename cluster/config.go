package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Config is the cluster section of Parley's configuration.
type Config struct {
	// RedisURL turns cluster mode on: redis://[user:password@]host:port/db
	// (rediss:// for TLS). Empty: a single node.
	RedisURL string `yaml:"redis_url"`
	// NodeID names this node in the cluster; empty means the hostname.
	NodeID string `yaml:"node_id"`
	// Advertise is the URL other nodes and clients use to reach this
	// node's signaling (https://node1.example.org).
	Advertise string `yaml:"advertise"`
	// AdvertiseMedia are the addresses (host or IP) this node's media is
	// reachable on, as its ICE candidates will carry them.
	AdvertiseMedia []string `yaml:"advertise_media"`
	// LeaseTTL is how long a node counts as alive after its last renewal;
	// it renews every third of it.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// RoomTTL is how long a room's claim lasts without renewal; its node
	// renews it every third of it while the room is in use. A claim whose
	// node is gone is taken over at once, whatever is left of it.
	RoomTTL time.Duration `yaml:"room_ttl"`
	// KeyPrefix starts every key Parley writes, so clusters can share a
	// Redis.
	KeyPrefix string `yaml:"key_prefix"`
	// DrainTimeout is how long a draining node (an operator's drain, or
	// SIGTERM) lets its calls go on before it asks their clients to
	// reconnect, which moves them to another node.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// RelaySignaling relays the signaling of a join whose room another
	// node hosts to that node (any node is then a front door on one
	// address); off, the join is answered wrong_node and the client moves
	// to the hosting node's Advertise URL.
	RelaySignaling bool `yaml:"relay_signaling"`
}

// DefaultConfig: cluster off; a dead node is forgotten within 6 s.
func DefaultConfig() Config {
	return Config{LeaseTTL: 6 * time.Second, RoomTTL: 30 * time.Second, KeyPrefix: "parley:", DrainTimeout: 30 * time.Second}
}

// Enabled reports whether cluster mode is configured.
func (c Config) Enabled() bool { return c.RedisURL != "" }

// Validate names the failing key.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	u, err := url.Parse(c.RedisURL)
	if err != nil || u.Scheme != "redis" && u.Scheme != "rediss" || u.Host == "" {
		return errors.New("cluster.redis_url: must be redis://host:port[/db] (or rediss:// for TLS)")
	}
	if c.Advertise == "" {
		return errors.New("cluster.advertise: required in cluster mode (the URL other nodes reach this one on)")
	}
	if a, err := url.Parse(c.Advertise); err != nil || a.Scheme != "http" && a.Scheme != "https" || a.Host == "" {
		return fmt.Errorf("cluster.advertise: %q is not an http(s) URL", c.Advertise)
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > 10*time.Second {
		return errors.New("cluster.lease_ttl: must be between 1s and 10s (a dead node must be gone within 10 s)")
	}
	if c.RoomTTL < 3*c.LeaseTTL {
		return errors.New("cluster.room_ttl: must be at least three lease_ttl")
	}
	if c.KeyPrefix == "" {
		return errors.New("cluster.key_prefix: must not be empty")
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > time.Hour {
		return errors.New("cluster.drain_timeout: must be between 0 and 1h")
	}
	return nil
}

// NodeName is the configured node_id or the hostname.
func (c Config) NodeName() (string, error) {
	if c.NodeID != "" {
		return c.NodeID, nil
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "", errors.New("cluster.node_id: not set and the hostname is unknown")
	}
	return h, nil
}
