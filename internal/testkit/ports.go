package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports handed to programs that must be told a port up front (a config
// file, a command-line flag) instead of binding port 0 and reporting what
// they got. Asking the kernel for port 0 and closing it is not enough:
// the port comes from the ephemeral range, and under a busy test run the
// kernel soon hands the same number to some outgoing connection's local
// end, so the server's later bind on the wildcard address fails with
// "address already in use". These helpers pick numbers below Linux's
// default ephemeral range (32768-60999), which the kernel never assigns
// on its own, and check that the wildcard address is free on them.
const (
	testPortLow   = 20000
	testPortHigh  = 32767
	testPortTries = 200
)

// handedOut holds every number this process has handed out, for TCP and
// UDP alike: a port picked a moment ago is free again once its probe
// closes, so two picks for one server (its HTTP listener and its ICE-TCP
// port, say) could otherwise be the same number, and the second bind
// fails. One set for both networks because Parley refuses a UDP port
// equal to its TCP port.
var handedOut = struct { //nolint:gochecknoglobals // process-wide by nature: every test of the binary picks from one range
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreeUDPPort returns a UDP port that was free on every address a moment
// ago. Another test could still take it in between, which loopback tests
// accept.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	return freePort(t, "udp", func(addr string) (func() error, error) {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		return c.Close, nil
	})
}

// FreeTCPPort is FreeUDPPort for TCP.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	return freePort(t, "tcp", func(addr string) (func() error, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		return l.Close, nil
	})
}

func freePort(t testing.TB, network string, bind func(addr string) (func() error, error)) int {
	t.Helper()
	for range testPortTries {
		port := testPortLow + rand.IntN(testPortHigh-testPortLow+1) //nolint:gosec // a test port, not a secret
		if !claim(port) {
			continue
		}
		closeFn, err := bind(fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		_ = closeFn()
		return port
	}
	t.Fatalf("no free %s port in %d-%d after %d tries", network, testPortLow, testPortHigh, testPortTries)
	return 0
}

// claim records port as handed out and reports whether it was not yet.
// A claimed port that then fails its bind stays claimed: something else
// holds it, so it is no use to a later pick either.
func claim(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}
