package testkit

import (
	"net"
	"testing"
)

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
// It is for programs that must be told a port up front (a config file, a
// command-line flag) instead of binding port 0 and reporting what they got;
// another process could take the port in between, which loopback tests
// accept.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// FreeTCPPort is FreeUDPPort for TCP.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
