package signaling

import (
	"context"
	"time"

	"github.com/parleyhq/parley/signaling/proto"
)

// Cluster mode (docs/cluster.md) reaches signaling through two small
// interfaces that cmd/parley fills from package cluster; without them
// (a single node) every room is local and pushes stay on this node.

// RoomPlacer says which node hosts a room.
type RoomPlacer interface {
	// PlaceRoom returns "" when room is hosted here (placing it here if it
	// was nowhere), else the public URL of the node that hosts it. It is
	// called on the join path, so it must answer within the context.
	PlaceRoom(ctx context.Context, room string) (nodeURL string, err error)
}

// ChatRelay carries chat pushes to the other nodes (hub_relay.go). Its
// methods must not block: the hub calls them under its locks.
type ChatRelay interface {
	// Publish sends payload to the nodes watching topic.
	Publish(topic string, payload []byte)
	// Watch starts (on) or stops receiving topic; what arrives is handed
	// to Server.DeliverRemote.
	Watch(topic string, on bool)
}

// placeTimeout bounds the placement of a room at join.
const placeTimeout = 3 * time.Second

// placeRoom refuses a join of a room that lives on another node with
// wrong_node and that node's URL, which the client joins instead (like
// LiveKit's node redirect); media always stays on the hosting node.
// When placement itself fails the join gets a retryable "unavailable".
func (s *Server) placeRoom(room string) *proto.Error {
	if s.placer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, placeTimeout)
	defer cancel()
	url, err := s.placer.PlaceRoom(ctx, room)
	if err != nil {
		s.log.Warn("room placement failed", "room", room, "err", err)
		return &proto.Error{Code: proto.CodeUnavailable, Message: "the cluster cannot place this room right now; try again"}
	}
	if url == "" {
		return nil
	}
	return &proto.Error{Code: proto.CodeWrongNode, Message: "this room is hosted by another node: join it at " + url, URL: url}
}

// ClusterPresence is the cluster-wide presence view (package cluster's
// Presence, docs/cluster.md): every node's status of an identity merged
// in Redis, where a node that dies stops counting when its lease lapses.
type ClusterPresence interface {
	// NodeID is this node's id; the node's own relay topic is named after
	// it (call_cluster.go).
	NodeID() string
	// SetPresence records this node's status of identity (offline: no
	// session of it here any more) and returns the cluster-wide
	// transition it made (Before == After: none).
	SetPresence(ctx context.Context, identity, status string) (PresenceChange, error)
	// Presences returns the merged status of identities; offline ones are
	// left out.
	Presences(ctx context.Context, identities []string) (map[string]PresenceState, error)
}

// PresenceChange is a cluster-wide transition of identity's presence;
// Version orders one identity's transitions.
type PresenceChange struct {
	Identity, Before, After string
	Version                 int64
}

// PresenceState is an identity's merged status and the version of its
// last transition.
type PresenceState struct {
	Status  string
	Version int64
}
