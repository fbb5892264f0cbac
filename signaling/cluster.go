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
