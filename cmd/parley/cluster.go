package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/chat"
	"github.com/parleyhq/parley/cluster"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/signaling"
	"github.com/parleyhq/parley/signaling/proto"
)

// Cluster mode (docs/cluster.md): set cluster.redis_url and chat.store:
// postgres, and this node registers itself in Redis, hosts the rooms
// placed on it, sends joiners of other rooms to their node, and relays
// chat pushes through Redis pub/sub. Without cluster.redis_url nothing
// here runs and Parley is the single binary with embedded SQLite.

func init() {
	for k, v := range map[string]string{
		"cluster":                 "Cluster mode: several Parley nodes on one Redis (coordination) and one PostgreSQL (chat, chat.store: postgres). Off unless redis_url is set. See docs/cluster.md.",
		"cluster.redis_url":       "redis://[user:password@]host:port/db (rediss:// for TLS); setting it turns cluster mode on. The password is never logged.",
		"cluster.node_id":         "This node's name in the cluster; empty means the host name.",
		"cluster.advertise":       "This node's public base URL (https://node1.example.org): joiners of rooms hosted here are sent to it. Empty: http(s)://signaling.listen when that names a host.",
		"cluster.advertise_media": "Addresses this node's media is reachable on (shown in `parley cluster nodes`).",
		"cluster.lease_ttl":       "How long the node counts as alive after its last renewal (renewed every third); a killed node is gone for the others after this.",
		"cluster.room_ttl":        "How long a room's claim lasts without renewal (renewed every third while in use); at least 3 lease_ttl.",
		"cluster.key_prefix":      "Prefix of every Redis key and channel Parley uses, so clusters can share a Redis.",
		"cluster.relay_signaling": "Relay the signaling of a join whose room another node hosts to that node, so one address (a load balancer or round-robin DNS) is enough for signaling; off (the default): the client is sent to the hosting node's advertise URL. Media always goes to the hosting node's own addresses. List the nodes in signaling.trusted_proxies so per-address limits see the client's address.",
		"cluster.drain_timeout":   "How long a draining node (parley cluster drain, or SIGTERM) lets its calls go on before asking their clients to reconnect, which moves them to another node. 0: at once.",
	} {
		exampleDocs[k] = v
	}
}

// validateCluster checks what cluster mode needs of the other sections.
func validateCluster(c Config) error {
	if err := c.Cluster.Validate(); err != nil {
		return err
	}
	if c.Cluster.Enabled() && c.Chat.Store != chat.StorePostgres {
		return errors.New("cluster.redis_url: cluster mode needs chat.store: postgres (every node must see the same chat)")
	}
	return nil
}

// checkCluster pings the cluster's Redis for `parley config check`.
func checkCluster(ctx context.Context, c cluster.Config, stdout io.Writer) error {
	if !c.Enabled() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cluster.Check(cctx, c); err != nil {
		return fmt.Errorf("cluster.redis_url: %w", err)
	}
	fmt.Fprintln(stdout, "cluster: Redis answers")
	return nil
}

// clusterParts is what buildApp adds in cluster mode.
type clusterParts struct {
	node     *cluster.Node
	bus      *cluster.Bus
	keeper   *cluster.RoomKeeper
	presence *cluster.Presence
	// sig receives the bus's events; set by buildApp before anything runs.
	sig *signaling.Server
}

// buildCluster joins the cluster (its Redis must answer) and wires the
// node's lease, the room keeper and the chat bus into a. The lease is
// given up when the app stops (Node.Run), the rooms' claims too
// (RoomKeeper.Run).
func buildCluster(ctx context.Context, a *app, cfg cluster.Config, dir *rooms.Directory, log *slog.Logger) (*clusterParts, error) {
	load := func() cluster.Load {
		_, participants := dir.Counts()
		return cluster.Load{Participants: participants}
	}
	node, err := cluster.New(ctx, cfg, version, load, log)
	if err != nil {
		return nil, err
	}
	cp := &clusterParts{node: node}
	a.add("cluster node", node)
	activeRooms := func() []string {
		var names []string
		for _, r := range dir.Rooms(func(string) bool { return true }) {
			if r.Participants > 0 {
				names = append(names, r.Name)
			}
		}
		return names
	}
	cp.keeper = cluster.NewRoomKeeper(node, activeRooms, log)
	// A room taken over by another node while this one counted as dead:
	// its participants here rejoin, and the rejoin lands on the owner.
	cp.keeper.OnLost(func(room string) { dir.ByeRoom(room, proto.ByeReconnect) })
	a.add("cluster rooms", cp.keeper)
	cp.bus = cluster.NewBus(node, func(topic string, payload []byte) { cp.sig.DeliverRemote(topic, payload) }, log)
	// Pushes relayed while the bus was down are lost: once it works
	// again, signaling refills the sessions from PostgreSQL (and tells
	// the other nodes what this one failed to publish), on the refill's
	// own goroutine, never the bus's.
	cp.bus.OnRecover(func(o cluster.Outage) { cp.sig.ClusterRefill().Outage(o.Since, o.Unsubscribed, o.Lost, o.LostMore) })
	a.add("cluster bus", cp.bus)
	a.add("cluster refill", clusterRefill{cp})
	// A node killed with publications queued leaves no outage on this
	// node's bus: its lease lapsing says its pushes may be lost.
	a.add("cluster departures", cluster.NewDepartures(node, func(ni cluster.NodeInfo) {
		cp.sig.ClusterRefill().Departed(ni.Renewed.Add(-cluster.LossMargin))
	}, log))
	// Presence merged over the nodes: the reaper on every node drops the
	// entries of dead nodes and signaling announces what that changed.
	cp.presence = cluster.NewPresence(node,
		func(cs []cluster.PresenceChange) { cp.sig.PresenceReaped(presenceChanges(cs)) },
		func() { cp.sig.PresenceLost() }, log)
	a.add("cluster presence", cp.presence)
	a.add("cluster presence sync", clusterPresenceSync{cp})
	drainer := cluster.NewDrainer(node, cfg.DrainTimeout, activeRooms,
		func() int { return dir.ByeAll(proto.ByeReconnect) }, log)
	a.add("cluster drain", drainer)
	a.drain = drainer.Drain // SIGTERM drains first (serve.go)
	return cp, nil
}

// clusterRefill runs signaling's refill after bus outages; the server it
// belongs to is made after the cluster parts, but before anything runs.
type clusterRefill struct{ cp *clusterParts }

func (r clusterRefill) Run(ctx context.Context) error { return r.cp.sig.ClusterRefill().Run(ctx) }

// clusterPresenceSync runs signaling's side of cluster presence
// (retried writes, answers to calls from other nodes).
type clusterPresenceSync struct{ cp *clusterParts }

func (r clusterPresenceSync) Run(ctx context.Context) error { return r.cp.sig.RunPresence(ctx) }

// presenceView is the signaling.ClusterPresence of a cluster node.
type presenceView struct{ p *cluster.Presence }

func (v presenceView) NodeID() string { return v.p.NodeID() }

func (v presenceView) SetPresence(ctx context.Context, identity, status string) (signaling.PresenceChange, error) {
	c, err := v.p.Set(ctx, identity, status)
	return signaling.PresenceChange(c), err
}

func (v presenceView) Presences(ctx context.Context, identities []string) (map[string]signaling.PresenceState, error) {
	m, err := v.p.Statuses(ctx, identities)
	return presenceStates(m, err)
}

// GroupPresences and AddGroupMembers make presenceView a
// signaling.ClusterGroups: groups' members listed in Redis. (signaling
// finds them by a type assertion, so the compiler is asked to check.)
var _ signaling.ClusterGroups = presenceView{}

func (v presenceView) GroupPresences(ctx context.Context, identity string, groups, also []string) (map[string]signaling.PresenceState, error) {
	m, err := v.p.GroupStatuses(ctx, identity, groups, also)
	return presenceStates(m, err)
}

func (v presenceView) AddGroupMembers(ctx context.Context, group string, members []string) error {
	return v.p.AddGroupMembers(ctx, group, members)
}

// PresencesChangedSince and GroupMembers make presenceView a
// signaling.ClusterPresenceRefill: after a bus outage the node reads
// which presence changes it missed.
var _ signaling.ClusterPresenceRefill = presenceView{}

func (v presenceView) PresencesChangedSince(ctx context.Context, since time.Time, identities []string) (map[string]signaling.PresenceState, error) {
	m, err := v.p.ChangedSince(ctx, since, identities)
	return presenceStates(m, err)
}

func (v presenceView) GroupMembers(ctx context.Context, groups []string) (map[string][]string, error) {
	return v.p.GroupMembers(ctx, groups)
}

// presenceStates converts cluster's statuses to signaling's.
func presenceStates(m map[string]cluster.PresenceState, err error) (map[string]signaling.PresenceState, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[string]signaling.PresenceState, len(m))
	for id, st := range m {
		out[id] = signaling.PresenceState(st)
	}
	return out, nil
}

func presenceChanges(cs []cluster.PresenceChange) []signaling.PresenceChange {
	out := make([]signaling.PresenceChange, len(cs))
	for i, c := range cs {
		out[i] = signaling.PresenceChange(c)
	}
	return out
}

// placer is the signaling.RoomPlacer of a cluster node.
type placer struct{ node *cluster.Node }

// NodeID, RoomHost and Peers make placer the admin API's view of the
// cluster too (signaling.ClusterPeers).
func (p placer) NodeID() string { return p.node.ID() }

func (p placer) RoomHost(ctx context.Context, room string) (string, error) {
	ni, ok, err := p.node.Host(ctx, room)
	if err != nil || !ok || ni.ID == p.node.ID() {
		return "", err
	}
	return ni.URL, nil
}

func (p placer) Peers(ctx context.Context) ([]signaling.ClusterPeer, error) {
	nodes, err := p.node.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []signaling.ClusterPeer
	for _, ni := range nodes {
		if ni.ID != p.node.ID() && ni.URL != "" {
			out = append(out, signaling.ClusterPeer{ID: ni.ID, URL: ni.URL})
		}
	}
	return out, nil
}

func (p placer) PlaceRoom(ctx context.Context, room string) (string, error) {
	ni, err := p.node.Place(ctx, room)
	if err != nil {
		return "", err
	}
	if ni.ID == p.node.ID() {
		return "", nil
	}
	// A claim's node counts as alive while its lease lasts, which lags a
	// crash by up to cluster.lease_ttl: a joiner sent there meanwhile
	// would load a page from a dead node and stay on it. So the node must
	// answer first; if it does not, the join gets the retryable
	// "unavailable", and the retry after the lease lapsed places the room
	// on a live node.
	if !nodeAnswers(ctx, ni.URL) {
		return "", fmt.Errorf("cluster: node %s, which hosts %s, does not answer", ni.ID, room)
	}
	return ni.URL, nil
}

// nodeProbeTimeout bounds the check that a room's node answers.
const nodeProbeTimeout = time.Second

// nodeAnswers reports whether the node at base answers HTTP at all (any
// status: a node whose PostgreSQL is away still hosts its calls).
func nodeAnswers(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, nodeProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}

// clusterCommand implements `parley cluster nodes|drain|undrain`.
func clusterCommand(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("cluster: want nodes, drain or undrain")
	}
	fs := flag.NewFlagSet("cluster "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "configuration file (for cluster.redis_url and cluster.node_id)")
	nodeID := fs.String("node", "", "node to drain (default: cluster.node_id of the configuration, else this host's name)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("cluster %s: %w", args[0], err)
	}
	cfg, _, err := loadConfig(configArgs(*file), environ)
	if err != nil {
		return err
	}
	if err := cfg.Cluster.Validate(); err != nil {
		return err
	}
	if !cfg.Cluster.Enabled() {
		return errors.New("cluster: cluster.redis_url is not set in this configuration")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch args[0] {
	case "nodes":
		nodes, err := cluster.ListNodes(cctx, cfg.Cluster)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			state := "active"
			if n.Draining {
				state = "draining"
			}
			fmt.Fprintf(stdout, "%-20s %-9s %-40s participants=%d version=%s\n", n.ID, state, n.URL, n.Load.Participants, n.Version)
		}
		return nil
	case "drain", "undrain":
		id := *nodeID
		if id == "" {
			id = cfg.Cluster.NodeID
		}
		on := args[0] == "drain"
		if err := cluster.SetDrain(cctx, cfg.Cluster, id, on); err != nil {
			return err
		}
		if on {
			fmt.Fprintln(stdout, "drain asked: the node takes no new rooms within a third of cluster.lease_ttl; its calls go on until they end")
		} else {
			fmt.Fprintln(stdout, "drain lifted: the node takes rooms again")
		}
		return nil
	}
	return fmt.Errorf("cluster: unknown subcommand %q", args[0])
}

// completeCluster fills cluster.advertise from signaling.listen when the
// operator left it empty and the listen address names a host (not
// 0.0.0.0 or [::]): on a machine whose nodes listen on their own
// addresses, that is the URL the others reach them on.
func completeCluster(c *Config) {
	if !c.Cluster.Enabled() || c.Cluster.Advertise != "" {
		return
	}
	host, port, err := net.SplitHostPort(c.Signaling.Listen)
	if err != nil || host == "" || port == "0" {
		return // Validate then asks for cluster.advertise
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return
	}
	scheme := "http"
	if c.Signaling.TLSCert != "" {
		scheme = "https"
	}
	c.Cluster.Advertise = scheme + "://" + net.JoinHostPort(host, port)
}
