// Package relay is the TURN server's own data plane on Linux: event loops
// that read many sockets from one goroutine through epoll (loop_linux.go),
// UDP sockets and client TCP streams served by them (sock_linux.go,
// stream_linux.go), and the TURN-over-TCP frame splitter both readers of a
// client stream share (frames.go). The turn package keeps every protocol
// decision and the fast-path mirror; this package only moves bytes.
//
// Elsewhere (macOS, Windows, and on pion's virtual network in tests)
// there are no loops: NewLoops returns an empty set and the turn package
// leaves every socket to pion's goroutine-per-socket path, which the
// socket wrappers serve with the same fast path.
package relay

import (
	"errors"
	"net"
	"net/netip"
)

// MaxPayload is the largest datagram relayed, pion's own limit (its relay
// loop reads into a buffer of this size).
const MaxPayload = 1600

// ErrBacklog ends a client stream that sent more requests than the server
// could queue, and refuses a relayed frame for a client too far behind.
var ErrBacklog = errors.New("turn: client sent more than the server could queue")

// ErrNoLoops is returned when a socket is handed to an empty set of loops.
var ErrNoLoops = errors.New("turn: no event loop (the epoll data plane needs Linux)")

// Counter counts a drop (a prometheus.Counter fits).
type Counter interface{ Inc() }

// Handler is a loop's first look at a datagram, in frame[4:4+n] (frame has
// room for a 4-byte header in front and padding behind), on the loop's
// goroutine: it reports whether it dealt with the datagram; the rest is
// queued for the socket's reader.
type Handler func(frame []byte, n int, from netip.AddrPort) bool

// Socket is a UDP socket served by an event loop. As a net.PacketConn it
// reads what the loop queued and sends at once, never blocking.
type Socket interface {
	net.PacketConn
	// Recv is ReadFrom without allocating an address.
	Recv(p []byte) (int, netip.AddrPort, error)
	// SendTo is WriteTo without an address to allocate.
	SendTo(p []byte, to netip.AddrPort) error
	// Enqueue hands a datagram to the reader, as if the loop had queued it.
	Enqueue(b []byte, from netip.AddrPort)
	// Attach sets the loop's first look (nil: none) and starts serving.
	Attach(h Handler) error
}

// StreamConn is a client's TCP connection served by an event loop: Read
// returns one queued frame per call, Write may wait for room, TryWrite
// never waits.
type StreamConn interface {
	net.Conn
	TryWrite(p []byte) error
	// Attach starts serving: toPeer relays ChannelData, backlog counts a
	// connection ended for an overlong queue.
	Attach(toPeer func(frame []byte) bool, backlog func()) error
	// End records why the stream ended; Read returns it after the queue.
	End(err error)
}
