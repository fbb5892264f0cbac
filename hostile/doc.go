// Package hostile holds the hostile-load suite: tests that attack a real
// parley binary from one address the way an abusive client would
// (floods, slow trickles, half-open connections, oversized declarations)
// and assert two things a user cares about: a legitimate client is still
// served during the attack, and the server's memory stays bounded.
//
// Every attack is bounded in count and time and stays on loopback. The
// package has no production code; its tests run in CI with the rest.
package hostile
