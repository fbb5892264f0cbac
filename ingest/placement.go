package ingest

import "context"

// RoomPlacer says which node hosts a room in cluster mode (docs/cluster.md);
// cmd/parley fills it from package cluster, and it is nil on a single
// node, where every room is here. An ingest stream goes where its room
// is: a WHIP publish landing on another node is passed to the hosting
// node, an RTMP publish is relayed to it (the encoder keeps its one
// connection).
type RoomPlacer interface {
	// PlaceRoom returns "" when room is hosted here, else the public base
	// URL of the node that hosts it; a room hosted nowhere is first placed
	// on the least-loaded live node, which may be another one.
	PlaceRoom(ctx context.Context, room string) (nodeURL string, err error)
}
