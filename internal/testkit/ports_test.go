package testkit

import "testing"

// One server takes several picked ports (HTTP, ICE-TCP, ICE-UDP); each
// pick is free on its own, so only the helpers can keep them apart.
func TestPickedPortsAreDistinct(t *testing.T) {
	seen := map[int]string{}
	for i := range 300 {
		for _, pick := range []struct {
			network string
			port    int
		}{{"tcp", FreeTCPPort(t)}, {"udp", FreeUDPPort(t)}} {
			if was, dup := seen[pick.port]; dup {
				t.Fatalf("pick %d: %s port %d was already handed out as a %s port", i, pick.network, pick.port, was)
			}
			seen[pick.port] = pick.network
		}
	}
}
