// Package cluster is Parley's membership and room placement on Redis:
// every node keeps a lease on its own record (id, addresses, version,
// load, draining), and a room is claimed for one node at a time with an
// atomic script, so two nodes racing for a room never both host it.
//
// There is no protocol of Parley's own between nodes: what nodes know of
// each other is what Redis holds, and a node whose lease lapses is gone
// for the others. Single-node Parley (no cluster.redis_url) does not use
// this package.
package cluster
