//go:build !linux

package relay

import (
	"net"
	"net/netip"
)

// Loops is empty off Linux: there is no epoll, and the turn package
// leaves every socket to pion's goroutine-per-socket path (the one it
// uses on a virtual network). A nil *Loops is empty too.
type Loops struct{}

// NewLoops returns the empty set whatever n: Len is 0.
func NewLoops(int) (*Loops, error) { return &Loops{}, nil }

// Len is 0: no loops.
func (*Loops) Len() int { return 0 }

// Start has no loop to run.
func (*Loops) Start() {}

// Close has no loop to stop.
func (*Loops) Close() {}

// Socket refuses: there is no loop to serve it (callers check Len first).
func (*Loops) Socket(net.PacketConn, int, Counter) (Socket, error) { return nil, ErrNoLoops }

// RelaySocket refuses, as Socket.
func (*Loops) RelaySocket(net.PacketConn, netip.AddrPort, Counter) (Socket, error) {
	return nil, ErrNoLoops
}

// Stream refuses, as Socket.
func (*Loops) Stream(*net.TCPConn, netip.AddrPort, FrameReader) (StreamConn, error) {
	return nil, ErrNoLoops
}
